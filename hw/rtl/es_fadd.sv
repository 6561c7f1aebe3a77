// IEEE binary32 (W = 32) or binary64 (W = 64) addition y = a + b, or a - b with `sub`, round to
// nearest even, one rounding (docs/numerics.md: residual adds, RoPE's sums, the exp2 interpolation;
// W = 64 is rms_factor's ms + eps). Subnormal operands and results are exact (gradual underflow,
// never flushed), an exact cancellation gives +0 (x - x = +0; -0 + -0 = -0), overflow gives inf.
// Operands must be finite (inf/NaN are not handled: no unit produces them).
//
// Ports (fixed: es_vec and es_attn instantiate it as is):
//   clk, en (every stage advances only when en = 1; y holds otherwise), sub (1: a - b),
//   a[W-1:0], b[W-1:0], y[W-1:0]. Latency LATENCY = 6 en-cycles: y shows the result of the
//   operands sampled LATENCY enabled edges earlier.
//
// Stages (one long path each, for 250-300 MHz on UltraScale+):
//   1. magnitude compare and swap (|big| >= |small|), exponent difference (both differences are
//      computed beside the compare, the swap only selects)
//   2. alignment: the small significand shifted right by the exponent difference, the bits shifted
//      out ORed into a sticky bit (3 extra bits: guard, round, sticky; enough for one rounding)
//   3. the significand add or subtract (carry chain of P+4 bits); beside it, the one-hot mask of
//      the bit where the exponent would reach 1
//   4. leading-zero count (a tree) of the sum ORed with that mask, so the count stops where the
//      exponent reaches 1 (subnormal results)
//   5. normalizing shift (left by the count, or right by 1 on a carry), the exponent beside it
//   6. RNE increment that carries into the exponent and on to inf, pack
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
    localparam int LATENCY = 6;                 // documentation for instantiating units
    /* verilator lint_on UNUSEDPARAM */
    localparam int EW = (W == 64) ? 11 : 8;     // exponent bits
    localparam int MW = W - 1 - EW;             // fraction bits
    localparam int P = MW + 1;                  // significand bits
    localparam int SW = P + 3;                  // significand + guard, round, sticky
    localparam int LZW = $clog2(SW + 1);
    localparam int PAD = 64 - SW - 1;           // the count runs on 64 bits: {sum, 1, zeros}
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
    logic [SW-1:0]  stop3;
    always_ff @(posedge clk) begin
        if (en) begin
            sgn3 <= sgn2;
            zsgn3 <= zsgn2;
            s3 <= effsub2 ? {1'b0, x2} - {1'b0, z2} : {1'b0, x2} + {1'b0, z2};
            ex3 <= ex2;
            // shifting left by ex - 1 brings the result to exponent 1: a one at bit SW - ex stops the count
            stop3 <= ({1'b0, ex2} <= (EW+1)'(SW)) ? SW'(1) << (SW - 32'(ex2)) : '0;
        end
    end

    // ---- stage 4: leading zeros of s3[SW-1:0], stopped where the exponent would drop below 1
    // leading zeros of a 64-bit word (64 for zero) as a tree: 2-bit groups, then five levels that each
    // merge two neighbours with one 2:1 mux per count bit (log depth; a for-loop priority chain maps
    // to a LUT chain as long as the word)
    function automatic logic [6:0] lzc64(input logic [63:0] lzv);
        logic [31:0]      qz1;
        logic [31:0]      qc1;
        logic [15:0]      qz2;
        logic [15:0][1:0] qc2;
        logic [7:0]       qz3;
        logic [7:0][2:0]  qc3;
        logic [3:0]       qz4;
        logic [3:0][3:0]  qc4;
        logic [1:0]       qz5;
        logic [1:0][4:0]  qc5;
        logic [5:0]       qc6;
        for (int i = 0; i < 32; i++) begin
            qz1[i] = !(lzv[2*i+1] | lzv[2*i]);
            qc1[i] = !lzv[2*i+1];
        end
        for (int i = 0; i < 16; i++) begin
            qz2[i] = qz1[2*i+1] & qz1[2*i];
            qc2[i] = qz1[2*i+1] ? {1'b1, qc1[2*i]} : {1'b0, qc1[2*i+1]};
        end
        for (int i = 0; i < 8; i++) begin
            qz3[i] = qz2[2*i+1] & qz2[2*i];
            qc3[i] = qz2[2*i+1] ? {1'b1, qc2[2*i]} : {1'b0, qc2[2*i+1]};
        end
        for (int i = 0; i < 4; i++) begin
            qz4[i] = qz3[2*i+1] & qz3[2*i];
            qc4[i] = qz3[2*i+1] ? {1'b1, qc3[2*i]} : {1'b0, qc3[2*i+1]};
        end
        for (int i = 0; i < 2; i++) begin
            qz5[i] = qz4[2*i+1] & qz4[2*i];
            qc5[i] = qz4[2*i+1] ? {1'b1, qc4[2*i]} : {1'b0, qc4[2*i+1]};
        end
        qc6 = qz5[1] ? {1'b1, qc5[0]} : {1'b0, qc5[1]};
        lzc64 = (qz5[1] & qz5[0]) ? 7'd64 : {1'b0, qc6};
    endfunction
    logic [6:0]     lz;
    assign lz = lzc64({s3[SW-1:0] | stop3, 1'b1, PAD'(0)});   // <= SW: the 1 after the sum bounds it
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
            lz4 <= LZW'(lz);
        end
    end

    // ---- stage 5: normalize
    logic           sgn5, zsgn5, zero5, up5;
    logic [SW-1:0]  n5;
    logic [EW:0]    eu5, ed5;
    always_ff @(posedge clk) begin
        if (en) begin
            sgn5 <= sgn4;
            zsgn5 <= zsgn4;
            zero5 <= zero4;
            up5 <= s4[SW];
            n5 <= s4[SW] ? {s4[SW:2], s4[1] | s4[0]} : s4[SW-1:0] << lz4;
            eu5 <= {1'b0, ex4} + 1'b1;
            ed5 <= {1'b0, ex4} - (EW+1)'(lz4);
        end
    end

    // ---- stage 6: round, pack
    logic [EW:0]    er;
    logic           inc;
    logic [W-2:0]   body;
    logic [W-1:0]   y6;
    always_comb begin
        // the stop bit limits the shift: a leading one short of the top is a subnormal (exponent 0)
        er = up5 ? eu5 : n5[SW-1] ? ed5 : '0;
        // significand n[SW-1:3], guard n[2], sticky n[1:0]
        inc = n5[2] && (n5[3] || n5[1:0] != 2'b00);
        body = {er[EW-1:0], n5[SW-2:3]} + (W-1)'(inc);
        if (zero5) y6 = {zsgn5, {(W-1){1'b0}}};
        else if (er >= EMAX) y6 = {sgn5, EMAX[EW-1:0], {MW{1'b0}}};
        else y6 = {sgn5, body};
    end
    always_ff @(posedge clk) begin
        if (en) y <= y6;
    end
    wire unused = &{1'b0, lz};                  // lz4 keeps the count's LZW bits
endmodule
