// IEEE binary32 multiply, round to nearest even, one rounding; three register stages (latency 3,
// every stage advances with `en`). Handles zero, sign, normal and subnormal operands and results
// (gradual underflow, never flushed to zero); overflow gives inf. Operands must be finite (inf/NaN
// are not handled: the dequantize stage only sees finite scales and accumulators). Part of
// es_dequant (docs/numerics.md "Linear layers").
// Stages, so that no cycle holds more than one of the long paths at 250 MHz:
//   1. operand normalization (leading-zero count and shift of subnormal significands), exponents
//   2. the 24 x 24-bit significand product (DSP48E2 cascade between registers)
//   3. normalization of the product, the subnormal right shift with sticky bits, RNE increment
module es_fmul (
    input  logic        clk,
    input  logic        en,
    input  logic [31:0] a,
    input  logic [31:0] b,
    output logic [31:0] y
);
    // ---- stage 1
    logic        sgn0, zero0;
    logic [23:0] sa, sb;
    logic [4:0]  lza, lzb;
    logic signed [11:0] ea0, eb0;
    always_comb begin
        sgn0 = a[31] ^ b[31];
        zero0 = a[30:0] == 31'd0 || b[30:0] == 31'd0;
        sa = {a[30:23] != 8'd0, a[22:0]};
        sb = {b[30:23] != 8'd0, b[22:0]};
        lza = 5'd0;
        lzb = 5'd0;
        for (int i = 0; i < 24; i++) begin
            if (sa[i]) lza = 5'(23 - i);
            if (sb[i]) lzb = 5'(23 - i);
        end
        // subnormal operands: normalize (effective biased exponent 1 - leading zeros)
        ea0 = (a[30:23] == 8'd0) ? 12'sd1 - 12'(lza) : 12'(a[30:23]);
        eb0 = (b[30:23] == 8'd0) ? 12'sd1 - 12'(lzb) : 12'(b[30:23]);
    end
    logic        sgn1, zero1;
    logic [23:0] na1, nb1;
    logic signed [11:0] es1;
    always_ff @(posedge clk) begin
        if (en) begin
            sgn1 <= sgn0;
            zero1 <= zero0;
            na1 <= sa << lza;
            nb1 <= sb << lzb;
            es1 <= ea0 + eb0;
        end
    end

    // ---- stage 2
    logic        sgn2, zero2;
    logic [47:0] p2;
    logic signed [11:0] es2;
    always_ff @(posedge clk) begin
        if (en) begin
            sgn2 <= sgn1;
            zero2 <= zero1;
            p2 <= 48'(na1) * 48'(nb1);                  // in [2**46, 2**48)
            es2 <= es1;
        end
    end

    // ---- stage 3
    logic signed [11:0] er;
    logic [47:0]  m;
    logic [111:0] ms;      // {m, 64 zero bits} >> shift: nothing is shifted out (shift <= 63)
    logic [6:0]   sh;
    logic         inc;
    logic [30:0]  body;
    logic [31:0]  y3;
    always_comb begin
        if (p2[47]) begin
            m = p2;
            er = es2 - 12'sd126;
        end else begin
            m = p2 << 1;
            er = es2 - 12'sd127;
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
        if (zero2) y3 = {sgn2, 31'd0};
        else if (er >= 12'sd255) y3 = {sgn2, 8'hff, 23'd0};
        else y3 = {sgn2, body};
    end
    always_ff @(posedge clk) begin
        if (en) y <= y3;
    end

    wire unused = &{1'b0, ms[111]};
endmodule
