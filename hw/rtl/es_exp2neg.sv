// exp2_neg(z) of docs/numerics.md / edgestream.numerics.exp2_neg, bit for bit: for binary32 z <= 0,
//   z < -64 -> +0; n = floor(z); f = float32(z - n); i = floor(f * 256); r = f * 256 - i;
//   p = float32(T[i] + float32(D[i] * r)); y = p * 2**n
// with T/D the float32 tables (hw/generated/es_exp2_rom.sv, from edgestream.hwtables). f = z - n is
// rounded (RNE) when |z| < 0.5 (then f = 1 - |z| has bits below 2**-24); it can round to 1.0 for
// |z| <= 2**-25, where i would be 256: the unit then takes n + 1 and f = 0, so y = 1.0 (the exact
// 2**z rounded; numerics.exp2_neg indexes past its table there). y is always normal (p in [1, 2],
// n >= -64): no subnormal results. The sign bit of z is not looked at (z must be <= 0: the unit
// computes 2**-|z|); inf and NaN give 0. exp_neg(t) = exp2_neg(t * float32(log2 e)) is an es_fmul
// in front of this unit.
//
// Ports (fixed): clk, en (every stage advances only when en = 1), z[31:0], y[31:0].
// Latency LATENCY = 14 en-cycles. Needs es_fmul.sv, es_fadd.sv and hw/generated/es_exp2_rom.sv.
//
// Stages (one long path each):
//   1. |z| to fixed point (6.26 bits + a sticky bit: the bits below 2**-26 only matter as "nonzero"
//      for the rounding of f at 2**-24): one barrel shift
//   2. n = -(integer part + (fraction != 0)), f = 1 - fraction (exact, 27-bit negation)
//   3. f rounded to 24 bits at 2**-24 (increment; a carry out is the f = 1.0 case), i and r
//   4. table read (registered ROM) beside r as binary32 (16-bit leading-zero count and shift)
//   5-7. D[i] * r (es_fmul)   8-13. T[i] + that (es_fadd)   14. exponent minus |n|, z < -64 -> 0
module es_exp2neg (
    input  logic        clk,
    input  logic        en,
    input  logic [31:0] z,
    output logic [31:0] y
);
    /* verilator lint_off UNUSEDPARAM */
    localparam int LATENCY = 14;
    /* verilator lint_on UNUSEDPARAM */
    localparam int MUL_LAT = 3;                // es_fmul
    localparam int ADD_LAT = 6;                // es_fadd

    // ---- stage 1: |z| = m * 2**(e - 150) in units of 2**-26, the rest ORed into a sticky bit
    logic [23:0] m;
    logic [7:0]  ee;
    logic [5:0]  rs;
    logic [64:0] zs;
    logic        big;
    always_comb begin
        m = {z[30:23] != 8'd0, z[22:0]};
        ee = (z[30:23] == 8'd0) ? 8'd1 : z[30:23];
        // |z| > 64 (exponent 133 = 2**6), inf and NaN
        big = z[30:23] > 8'd133 || (z[30:23] == 8'd133 && z[22:0] != 23'd0);
        rs = (ee < 8'd70) ? 6'd63 : 6'(8'd133 - ee);
        zs = {m, 41'd0} >> rs;                 // rs = 0: m * 2**9 in units of 2**-26 at [64:32]
    end
    logic [33:0] zf1;                          // {6.27 fixed point, bit 0 = sticky}
    logic        big1;
    always_ff @(posedge clk) begin
        if (en) begin
            zf1 <= {zs[64:32], zs[31:0] != 32'd0};
            big1 <= big;
        end
    end

    // ---- stage 2: n = -nm, f = ceil(|z|) - |z|
    logic [6:0]  nm2;
    logic [26:0] f2;
    logic        big2;
    always_ff @(posedge clk) begin
        if (en) begin
            nm2 <= zf1[33:27] + 7'(zf1[26:0] != 27'd0);
            f2 <= 27'(-zf1[26:0]);             // 0 for a zero fraction
            big2 <= big1;
        end
    end

    // ---- stage 3: f to 24 bits (units of 2**-24), i = f24[23:16], r = f24[15:0] * 2**-16
    logic        rinc, carry;
    logic [23:0] f24;
    always_comb begin
        rinc = f2[2] && (f2[3] || f2[1:0] != 2'b00);
        f24 = f2[26:3] + 24'(rinc);
        carry = rinc && f2[26:3] == 24'hffffff;   // f rounded to 1.0: n + 1, f = 0
    end
    logic [7:0]  i3;
    logic [15:0] r3;
    logic [6:0]  nm3;
    logic        big3;
    always_ff @(posedge clk) begin
        if (en) begin
            i3 <= f24[23:16];                  // f24 wrapped to 0 on a carry
            r3 <= f24[15:0];
            nm3 <= carry ? nm2 - 7'd1 : nm2;
            big3 <= big2;
        end
    end

    // ---- stage 4: table read; r as binary32
    logic [63:0] td;
    es_exp2_rom u_rom (.clk, .en, .addr(i3), .data(td));
    function automatic logic [4:0] lzc16(input logic [15:0] v);
        lzc16 = 5'd16;
        for (int j = 0; j < 16; j++) if (v[j]) lzc16 = 5'(15 - j);
    endfunction
    logic [4:0]  lzr;
    logic [15:0] rn;
    assign lzr = lzc16(r3);
    assign rn = r3 << lzr[3:0];
    logic [31:0] r4;
    logic [6:0]  nm4;
    logic        big4;
    always_ff @(posedge clk) begin
        if (en) begin
            r4 <= (r3 == 16'd0) ? 32'd0 : {1'b0, 8'(8'd126 - {3'd0, lzr}), rn[14:0], 8'd0};
            nm4 <= nm3;
            big4 <= big3;
        end
    end

    // ---- stages 5-7: D[i] * r; T[i] waits beside it
    logic [31:0] prod;
    es_fmul u_mul (.clk, .en, .a(td[31:0]), .b(r4), .y(prod));
    logic [31:0] t5, t6, t7;
    always_ff @(posedge clk) begin
        if (en) begin
            t5 <= td[63:32];
            t6 <= t5;
            t7 <= t6;
        end
    end

    // ---- stages 8-13: p = T[i] + D[i] * r
    logic [31:0] p;
    es_fadd #(.W(32)) u_add (.clk, .en, .sub(1'b0), .a(t7), .b(prod), .y(p));

    // |n| and the zero flag wait beside the multiply and the add
    localparam int ND = MUL_LAT + ADD_LAT;
    logic [8*ND-1:0] nd;
    always_ff @(posedge clk) begin
        if (en) nd <= {nd[8*ND-9:0], big4, nm4};
    end
    logic [7:0] ndo;
    assign ndo = nd[8*ND-1 -: 8];

    // ---- stage 14: y = p * 2**n (p in [1, 2], n >= -64: the exponent stays >= 63)
    always_ff @(posedge clk) begin
        if (en) y <= ndo[7] ? 32'd0 : {1'b0, p[30:23] - {1'b0, ndo[6:0]}, p[22:0]};
    end

    wire unused = &{1'b0, p[31], z[31], rn[15]};   // p > 0; z <= 0 by contract; rn[15]: the leading one
endmodule
