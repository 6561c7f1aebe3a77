// IEEE binary32 multiply, round to nearest even, one rounding; combinational. Handles zero, sign,
// normal and subnormal operands and results (gradual underflow, never flushed to zero); overflow
// gives inf. Operands must be finite (inf/NaN are not handled: the dequantize stage only sees finite
// scales and accumulators). Part of es_dequant (docs/numerics.md "Linear layers").
module es_fmul (
    input  logic [31:0] a,
    input  logic [31:0] b,
    output logic [31:0] y
);
    logic        sgn, zero;
    logic [23:0] sa, sb;
    logic [4:0]  lza, lzb;
    logic signed [11:0] ea, eb, er;
    logic [47:0] p, m;
    logic [111:0] ms;      // {m, 64 zero bits} >> shift: nothing is shifted out (shift <= 63)
    logic [6:0]  sh;
    logic        inc;
    logic [30:0] body;
    always_comb begin
        sgn = a[31] ^ b[31];
        zero = a[30:0] == 31'd0 || b[30:0] == 31'd0;
        sa = {a[30:23] != 8'd0, a[22:0]};
        sb = {b[30:23] != 8'd0, b[22:0]};
        lza = 5'd0;
        lzb = 5'd0;
        for (int i = 0; i < 24; i++) begin
            if (sa[i]) lza = 5'(23 - i);
            if (sb[i]) lzb = 5'(23 - i);
        end
        // subnormal operands: normalize (effective biased exponent 1 - leading zeros)
        ea = (a[30:23] == 8'd0) ? 12'sd1 - 12'(lza) : 12'(a[30:23]);
        eb = (b[30:23] == 8'd0) ? 12'sd1 - 12'(lzb) : 12'(b[30:23]);
        p = 48'(sa << lza) * 48'(sb << lzb);            // in [2**46, 2**48)
        if (p[47]) begin
            m = p;
            er = ea + eb - 12'sd126;
        end else begin
            m = p << 1;
            er = ea + eb - 12'sd127;
        end
        // m: significand with its leading one at bit 47; result biased exponent er
        if (er >= 12'sd1) begin
            sh = 7'd0;
        end else if (er > -12'sd62) begin
            sh = 7'(12'sd1 - er);
        end else begin
            sh = 7'd63;
        end
        ms = {m, 64'd0} >> sh;
        // mantissa ms[110:88], guard ms[87], sticky ms[86:0]
        inc = ms[87] && (ms[88] || ms[86:0] != 87'd0);
        body = {(er >= 12'sd1) ? 8'(er) : 8'd0, ms[110:88]} + 31'(inc);
        if (zero) y = {sgn, 31'd0};
        else if (er >= 12'sd255) y = {sgn, 8'hff, 23'd0};
        else y = {sgn, body};
    end

    wire unused = &{1'b0, ms[111]};
endmodule
