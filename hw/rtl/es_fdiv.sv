// IEEE division y = a / b, binary32 (dbl = 0: operands in a[31:0], b[31:0], result in y[31:0],
// y[63:32] = 0) or binary64 (dbl = 1), correctly rounded to nearest even (a correctly rounded result
// does not depend on the algorithm, so it equals numpy's). Subnormal operands and results are exact
// (gradual underflow, never flushed); overflow gives inf; x / 0 gives inf of sign a ^ b and 0 / 0 the
// default NaN (7fc00000 / 7ff8000000000000). Operands must be finite. Per-token scalars of
// docs/numerics.md: 127 / m, m / 127, 32767 / max a, 1 / (1 + e), e / (1 + e) (binary32) and
// rms_factor's and attention's binary64 divisions.
//
// Ports (fixed): clk, rst_n, start (one-cycle pulse; taken only while busy = 0, ignored otherwise),
// dbl, a[63:0], b[63:0] (sampled with start), busy (1 from the cycle after start until done),
// done (one-cycle pulse: y valid), y[63:0] (held until the next done).
// Latency: done rises LAT_S = 31 (binary32) or LAT_D = 60 (binary64) cycles after the edge that took
// start; a new start may come in the cycle done is high.
//
// Algorithm: restoring radix-2 digit recurrence on the normalized significands (one quotient bit
// per cycle: a 54-bit compare-subtract, the one long path), P + 2 quotient bits (the first may be 0),
// the remainder's nonzero test as the sticky bit, then the rounding of es_fmul (normalization, a right
// shift with sticky bits for subnormal results, RNE increment carrying into the exponent and to inf),
// one register stage per long path:
//   LZC (leading zeros of both significands) | NORM (shift, exponent difference) | DIV x NQ |
//   RND1 (1-bit normalization of the quotient) | RND2 (subnormal shift, guard and sticky) | RND3
//   (increment, pack).
module es_fdiv (
    input  logic        clk,
    input  logic        rst_n,
    input  logic        start,
    input  logic        dbl,
    input  logic [63:0] a,
    input  logic [63:0] b,
    output logic        busy,
    output logic        done,
    output logic [63:0] y
);
    /* verilator lint_off UNUSEDPARAM */
    localparam int LAT_S = 31;
    localparam int LAT_D = 60;
    /* verilator lint_on UNUSEDPARAM */
    localparam int NQ_S = 26;                   // quotient bits: 24 + guard + a possibly-zero first bit
    localparam int NQ_D = 55;

    typedef enum logic [2:0] {S_IDLE, S_LZC, S_NORM, S_DIV, S_RND1, S_RND2, S_RND3} state_t;
    state_t state;

    logic               dbl_r, sgn, za, zb;
    logic [52:0]        sa, sb;                 // significands, leading bit at 52 after S_NORM
    logic [11:0]        xa, xb;                 // effective biased exponents (subnormal: 1)
    logic [5:0]         lza, lzb;
    logic signed [13:0] er;                     // biased result exponent
    logic [53:0]        rem;
    logic [54:0]        q;
    logic [5:0]         cnt;
    logic               stk;
    logic [55:0]        qn;                     // quotient, leading one at 55
    logic [5:0]         sh;
    logic [6:0]         nst;                    // quotient bits under the guard bit (sticky)
    logic [51:0]        mant;                   // fraction bits to round (binary32: [22:0])
    logic               g, st, ovf;
    logic [10:0]        ef;                     // exponent field before the increment

    // unpack (with start)
    logic [52:0] ua, ub;
    logic [11:0] ea, eb;
    always_comb begin
        if (dbl) begin
            ua = {a[62:52] != 11'd0, a[51:0]};
            ub = {b[62:52] != 11'd0, b[51:0]};
            ea = (a[62:52] == 11'd0) ? 12'd1 : {1'b0, a[62:52]};
            eb = (b[62:52] == 11'd0) ? 12'd1 : {1'b0, b[62:52]};
        end else begin
            // the 24-bit significand at the top: the same recurrence, fewer steps
            ua = {a[30:23] != 8'd0, a[22:0], 29'd0};
            ub = {b[30:23] != 8'd0, b[22:0], 29'd0};
            ea = (a[30:23] == 8'd0) ? 12'd1 : {4'd0, a[30:23]};
            eb = (b[30:23] == 8'd0) ? 12'd1 : {4'd0, b[30:23]};
        end
    end

    // called in the S_LZC branch only: an always_comb loop would be re-evaluated by Icarus every cycle
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
    function automatic logic [5:0] lzc53(input logic [52:0] sv);
        lzc53 = 6'(lzc64({sv, 1'b1, 10'd0}));   // 53 for zero
    endfunction

    // recurrence step
    // separate continuous assignments: Icarus re-evaluates each only when its own operands change
    logic        ge;
    logic [53:0] rsub;
    assign rsub = rem - {1'b0, sb};
    assign ge = rem >= {1'b0, sb};

    // rounding: 1-bit normalization candidates (RND1), subnormal shift (RND2), increment (RND3)
    logic [55:0]        q56;
    logic signed [13:0] er_m1;
    logic [119:0]       shr;
    logic               inc;
    logic [62:0]        body;
    assign q56 = dbl_r ? {q, 1'b0} : {q[25:0], 30'd0};
    assign er_m1 = er - 14'sd1;
    assign shr = {qn, 64'd0} >> sh;
    // the bits under the guard bit from a mask of the unshifted quotient, beside the shifter
    logic sticky;
    assign sticky = (qn & ~(56'hffffffffffffff << nst)) != 56'd0;
    assign inc = g && (mant[0] || st);
    assign body = dbl_r ? {ef, mant} + 63'(inc) : 63'({ef[7:0], mant[22:0]} + 31'(inc));

    function automatic logic [5:0] sub_shift(input logic signed [13:0] e);
        // right shift that brings a result of biased exponent e < 1 to exponent 1 (63: everything sticky)
        if (e >= 14'sd1) sub_shift = 6'd0;
        else if (e < -14'sd61) sub_shift = 6'd63;
        else sub_shift = 6'(14'sd1 - e);
    endfunction

    assign busy = state != S_IDLE;
    wire unused = &{1'b0, shr[119], shr[65:0]};   // the hidden bit (implied by the exponent); sticky bits

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            state <= S_IDLE;
            done <= 1'b0;
            y <= 64'd0;
        end else begin
            done <= 1'b0;
            case (state)
                S_IDLE: if (start) begin
                    dbl_r <= dbl;
                    sgn <= dbl ? a[63] ^ b[63] : a[31] ^ b[31];
                    sa <= ua;
                    sb <= ub;
                    xa <= ea;
                    xb <= eb;
                    za <= ua == 53'd0;
                    zb <= ub == 53'd0;
                    state <= S_LZC;
                end
                S_LZC: begin
                    lza <= lzc53(sa);
                    lzb <= lzc53(sb);
                    state <= S_NORM;
                end
                S_NORM: begin
                    rem <= {1'b0, sa << lza};
                    sb <= sb << lzb;
                    er <= 14'(xa) - 14'(lza) - 14'(xb) + 14'(lzb) + (dbl_r ? 14'sd1023 : 14'sd127);
                    q <= 55'd0;
                    cnt <= dbl_r ? 6'(NQ_D - 1) : 6'(NQ_S - 1);
                    state <= S_DIV;
                end
                S_DIV: begin
                    q <= {q[53:0], ge};
                    rem <= (ge ? rsub : rem) << 1;
                    cnt <= cnt - 6'd1;
                    if (cnt == 6'd0) state <= S_RND1;
                end
                S_RND1: begin
                    stk <= rem != 54'd0;
                    if (q56[55]) begin
                        qn <= q56;
                        sh <= sub_shift(er);
                        nst <= (dbl_r ? 7'd2 : 7'd31) + 7'(sub_shift(er));
                    end else begin
                        qn <= q56 << 1;
                        er <= er_m1;
                        sh <= sub_shift(er_m1);
                        nst <= (dbl_r ? 7'd2 : 7'd31) + 7'(sub_shift(er_m1));
                    end
                    state <= S_RND2;
                end
                S_RND2: begin
                    ovf <= er >= (dbl_r ? 14'sd2047 : 14'sd255);
                    ef <= (er >= 14'sd1) ? 11'(er) : 11'd0;
                    if (dbl_r) begin
                        mant <= shr[118:67];
                        g <= shr[66];
                        st <= sticky || stk;
                    end else begin
                        mant <= {29'd0, shr[118:96]};
                        g <= shr[95];
                        st <= sticky || stk;
                    end
                    state <= S_RND3;
                end
                S_RND3: begin
                    if (dbl_r) begin
                        if (zb) y <= za ? 64'h7ff8000000000000 : {sgn, 11'h7ff, 52'd0};
                        else if (za) y <= {sgn, 63'd0};
                        else if (ovf) y <= {sgn, 11'h7ff, 52'd0};
                        else y <= {sgn, body};
                    end else begin
                        if (zb) y <= za ? 64'h7fc00000 : {32'd0, sgn, 8'hff, 23'd0};
                        else if (za) y <= {32'd0, sgn, 31'd0};
                        else if (ovf) y <= {32'd0, sgn, 8'hff, 23'd0};
                        else y <= {32'd0, sgn, body[30:0]};
                    end
                    done <= 1'b1;
                    state <= S_IDLE;
                end
                default: state <= S_IDLE;
            endcase
        end
    end
endmodule
