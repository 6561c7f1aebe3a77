// IEEE binary32 (W = 32) or binary64 (W = 64) addition y = a + b, or a - b with `sub`, round to
// nearest even, one rounding (docs/numerics.md: residual adds, RoPE's sums, the exp2 interpolation;
// W = 64 is rms_factor's ms + eps). Subnormal operands and results are exact (gradual underflow,
// never flushed), an exact cancellation gives +0 (x - x = +0; -0 + -0 = -0), overflow gives inf.
// Operands must be finite (inf/NaN are not handled: no unit produces them).
//
// Ports (fixed: es_vec and es_attn instantiate it as is):
//   clk, en (every stage advances only when en = 1; y holds otherwise), sub (1: a - b),
//   a[W-1:0], b[W-1:0], y[W-1:0]. Latency LATENCY = 5 en-cycles: y shows the result of the
//   operands sampled LATENCY enabled edges earlier.
//
// Stages (one long path each, for 250-300 MHz on UltraScale+):
//   1. magnitude compare and swap (|big| >= |small|), exponent difference (both differences are
//      computed beside the compare, the swap only selects)
//   2. alignment: the small significand shifted right by the exponent difference, the bits shifted
//      out ORed into a sticky bit (3 extra bits: guard, round, sticky; enough for one rounding)
//   3. the significand add or subtract (carry chain of P+4 bits)
//   4. leading-zero count of the sum, limited so that the exponent stays >= 1 (a one planted at the
//      position where the exponent would reach 1 stops the count: subnormal results)
//   5. normalizing shift (left by the count, or right by 1 on a carry), RNE increment that carries
//      into the exponent and on to inf
module es_fadd #(
    parameter int W = 32
) (
    input  logic         clk,
    input  logic         en,
    input  logic         sub,
    input  logic [W-1:0] a,
    input  logic [W-1:0] b,
    output logic [W-1:0] y
);
    /* verilator lint_off UNUSEDPARAM */
    localparam int LATENCY = 5;                 // documentation for instantiating units
    /* verilator lint_on UNUSEDPARAM */
    localparam int EW = (W == 64) ? 11 : 8;     // exponent bits
    localparam int MW = W - 1 - EW;             // fraction bits
    localparam int P = MW + 1;                  // significand bits
    localparam int SW = P + 3;                  // significand + guard, round, sticky
    localparam int LZW = $clog2(SW + 1);
    localparam logic [EW:0] EMAX = {1'b0, {EW{1'b1}}};

    // ---- stage 1: swap so that |x| >= |z|
    logic           sb_eff, a_ge;
    logic [EW-1:0]  ea, eb;
    logic [EW-1:0]  dab, dba;
    logic [EW-1:0]  d_big;
    always_comb begin
        sb_eff = b[W-1] ^ sub;
        a_ge = a[W-2:0] >= b[W-2:0];
        // effective exponent: subnormals (field 0) have the exponent of the smallest normal
        ea = (a[W-2:MW] == '0) ? EW'(1) : a[W-2:MW];
        eb = (b[W-2:MW] == '0) ? EW'(1) : b[W-2:MW];
        dab = ea - eb;
        dba = eb - ea;
        d_big = a_ge ? dab : dba;
    end
    logic           sgn1, effsub1, zsgn1;
    logic [P-1:0]   mx1, mz1;
    logic [EW-1:0]  ex1;
    logic [LZW-1:0] d1;
    always_ff @(posedge clk) begin
        if (en) begin
            sgn1 <= a_ge ? a[W-1] : sb_eff;
            effsub1 <= a[W-1] ^ sb_eff;
            zsgn1 <= a[W-1] & sb_eff;          // sign of an exact zero sum (RNE): - only for -0 + -0
            mx1 <= a_ge ? {a[W-2:MW] != '0, a[MW-1:0]} : {b[W-2:MW] != '0, b[MW-1:0]};
            mz1 <= a_ge ? {b[W-2:MW] != '0, b[MW-1:0]} : {a[W-2:MW] != '0, a[MW-1:0]};
            ex1 <= a_ge ? ea : eb;
            // a difference >= SW leaves only the sticky bit, the same as SW
            d1 <= (d_big >= EW'(SW)) ? LZW'(SW) : LZW'(d_big);
        end
    end

    // ---- stage 2: align
    logic [P+SW-1:0] al;
    always_comb al = {mz1, {SW{1'b0}}} >> d1;
    logic           sgn2, effsub2, zsgn2;
    logic [SW-1:0]  x2, z2;
    logic [EW-1:0]  ex2;
    always_ff @(posedge clk) begin
        if (en) begin
            sgn2 <= sgn1;
            effsub2 <= effsub1;
            zsgn2 <= zsgn1;
            x2 <= {mx1, 3'b000};
            z2 <= {al[P+SW-1:P+1], al[P:0] != '0};
            ex2 <= ex1;
        end
    end

    // ---- stage 3: add / subtract (x >= z, so the difference is never negative)
    logic           sgn3, zsgn3;
    logic [SW:0]    s3;
    logic [EW-1:0]  ex3;
    always_ff @(posedge clk) begin
        if (en) begin
            sgn3 <= sgn2;
            zsgn3 <= zsgn2;
            s3 <= effsub2 ? {1'b0, x2} - {1'b0, z2} : {1'b0, x2} + {1'b0, z2};
            ex3 <= ex2;
        end
    end

    // ---- stage 4: leading zeros of s3[SW-1:0], stopped where the exponent would drop below 1
    function automatic logic [LZW-1:0] lzc(input logic [SW-1:0] v);
        lzc = LZW'(SW);
        for (int i = 0; i < SW; i++) if (v[i]) lzc = LZW'(SW - 1 - i);
    endfunction
    logic [SW-1:0]  lzin;
    logic [LZW-1:0] lz;
    // shifting left by ex3 - 1 brings the result to exponent 1: plant a one at bit SW - ex3
    assign lzin = s3[SW-1:0] | (({1'b0, ex3} <= (EW+1)'(SW)) ? SW'(1) << (SW - 32'(ex3)) : '0);
    assign lz = lzc(lzin);
    logic           sgn4, zsgn4, zero4;
    logic [SW:0]    s4;
    logic [EW-1:0]  ex4;
    logic [LZW-1:0] lz4;
    always_ff @(posedge clk) begin
        if (en) begin
            sgn4 <= sgn3;
            zsgn4 <= zsgn3;
            zero4 <= s3 == '0;
            s4 <= s3;
            ex4 <= ex3;
            lz4 <= lz;
        end
    end

    // ---- stage 5: normalize, round, pack
    logic [SW-1:0]  n;
    logic [EW:0]    er;
    logic           inc;
    logic [W-2:0]   body;
    logic [W-1:0]   y5;
    always_comb begin
        if (s4[SW]) begin
            n = {s4[SW:2], s4[1] | s4[0]};
            er = {1'b0, ex4} + 1'b1;
        end else begin
            n = s4[SW-1:0] << lz4;
            // the planted one limits the shift: a leading one short of the top is a subnormal
            er = n[SW-1] ? {1'b0, ex4} - (EW+1)'(lz4) : '0;
        end
        // significand n[SW-1:3], guard n[2], sticky n[1:0]
        inc = n[2] && (n[3] || n[1:0] != 2'b00);
        body = {er[EW-1:0], n[SW-2:3]} + (W-1)'(inc);
        if (zero4) y5 = {zsgn4, {(W-1){1'b0}}};
        else if (er >= EMAX) y5 = {sgn4, EMAX[EW-1:0], {MW{1'b0}}};
        else y5 = {sgn4, body};
    end
    always_ff @(posedge clk) begin
        if (en) y <= y5;
    end
endmodule
