// IEEE binary64 multiply y = a * b, round to nearest even, one rounding; subnormal operands and
// results exact (gradual underflow), overflow gives inf, finite operands only. Per-token scalars of
// docs/numerics.md (norm_quant's float64(m) / 127 * r), a handful per token, so it is sequential and
// small: a shift-add multiplier, one multiplier bit per cycle (a 53-bit add, the one long path),
// instead of the 53 x 53 DSP array a pipelined unit would need.
//
// Ports (fixed): clk, rst_n, start (one-cycle pulse; taken only while busy = 0, ignored otherwise),
// a[63:0], b[63:0] (sampled with start), busy (1 from the cycle after start until done), done
// (one-cycle pulse: y valid), y[63:0] (held until the next done). Latency: done rises LAT = 58 cycles
// after the edge that took start; a new start may come in the cycle done is high.
//
// Steps, one register stage per long path: LZC (both significands) | NORM (shift, exponent sum) |
// MUL x 53 (LSB first: {hi, lo} = ({hi, lo} + (lo[0] ? a : 0) * 2**53) / 2) | RND1 (1-bit
// normalization of the 106-bit product, sticky) | RND2 (subnormal right shift, guard and sticky) |
// RND3 (RNE increment carrying into the exponent and to inf, pack).
module es_fmul64 (
    input  logic        clk,
    input  logic        rst_n,
    input  logic        start,
    input  logic [63:0] a,
    input  logic [63:0] b,
    output logic        busy,
    output logic        done,
    output logic [63:0] y
);
    /* verilator lint_off UNUSEDPARAM */
    localparam int LAT = 58;
    /* verilator lint_on UNUSEDPARAM */

    typedef enum logic [2:0] {S_IDLE, S_LZC, S_NORM, S_MUL, S_RND1, S_RND2, S_RND3} state_t;
    state_t state;

    logic               sgn, zero;
    logic [52:0]        sa, sb;
    logic [11:0]        xa, xb;
    logic [5:0]         lza, lzb;
    logic signed [13:0] er;
    logic [52:0]        hi, lo;
    logic [5:0]         cnt;
    logic [55:0]        pn;                     // product, leading one at 55
    logic               stk;
    logic [5:0]         sh;
    logic [6:0]         nst;                    // product bits under the guard bit (sticky)
    logic [51:0]        mant;
    logic               g, st, ovf;
    logic [10:0]        ef;

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

    function automatic logic [5:0] sub_shift(input logic signed [13:0] e);
        // right shift that brings a result of biased exponent e < 1 to exponent 1 (63: everything sticky)
        if (e >= 14'sd1) sub_shift = 6'd0;
        else if (e < -14'sd61) sub_shift = 6'd63;
        else sub_shift = 6'(14'sd1 - e);
    endfunction

    logic [53:0]        sum;
    logic signed [13:0] er_m1;
    logic [119:0]       shr;
    logic               inc;
    logic [62:0]        body;
    // separate continuous assignments: Icarus re-evaluates each only when its own operands change
    assign sum = {1'b0, hi} + (lo[0] ? {1'b0, sa} : 54'd0);
    assign er_m1 = er - 14'sd1;
    assign shr = {pn, 64'd0} >> sh;
    // the bits under the guard bit from a mask of the unshifted product, beside the shifter
    logic sticky;
    assign sticky = (pn & ~(56'hffffffffffffff << nst)) != 56'd0;
    assign inc = g && (mant[0] || st);
    assign body = {ef, mant} + 63'(inc);

    assign busy = state != S_IDLE;

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            state <= S_IDLE;
            done <= 1'b0;
            y <= 64'd0;
        end else begin
            done <= 1'b0;
            case (state)
                S_IDLE: if (start) begin
                    sgn <= a[63] ^ b[63];
                    sa <= {a[62:52] != 11'd0, a[51:0]};
                    sb <= {b[62:52] != 11'd0, b[51:0]};
                    xa <= (a[62:52] == 11'd0) ? 12'd1 : {1'b0, a[62:52]};
                    xb <= (b[62:52] == 11'd0) ? 12'd1 : {1'b0, b[62:52]};
                    zero <= a[62:0] == 63'd0 || b[62:0] == 63'd0;
                    state <= S_LZC;
                end
                S_LZC: begin
                    lza <= lzc53(sa);
                    lzb <= lzc53(sb);
                    state <= S_NORM;
                end
                S_NORM: begin
                    sa <= sa << lza;
                    lo <= sb << lzb;
                    hi <= 53'd0;
                    // biased exponent for a product in [2, 4) (one less if it is in [1, 2))
                    er <= 14'(xa) - 14'(lza) + 14'(xb) - 14'(lzb) - 14'sd1022;
                    cnt <= 6'd52;
                    state <= S_MUL;
                end
                S_MUL: begin
                    hi <= sum[53:1];
                    lo <= {sum[0], lo[52:1]};
                    cnt <= cnt - 6'd1;
                    if (cnt == 6'd0) state <= S_RND1;
                end
                S_RND1: begin
                    if (hi[52]) begin
                        pn <= {hi, lo[52:50]};
                        stk <= lo[49:0] != 50'd0;
                        sh <= sub_shift(er);
                        nst <= 7'd2 + 7'(sub_shift(er));
                    end else begin
                        pn <= {hi[51:0], lo[52:49]};
                        stk <= lo[48:0] != 49'd0;
                        er <= er_m1;
                        sh <= sub_shift(er_m1);
                        nst <= 7'd2 + 7'(sub_shift(er_m1));
                    end
                    state <= S_RND2;
                end
                S_RND2: begin
                    ovf <= er >= 14'sd2047;
                    ef <= (er >= 14'sd1) ? 11'(er) : 11'd0;
                    mant <= shr[118:67];
                    g <= shr[66];
                    st <= sticky || stk;
                    state <= S_RND3;
                end
                S_RND3: begin
                    if (zero) y <= {sgn, 63'd0};
                    else if (ovf) y <= {sgn, 11'h7ff, 52'd0};
                    else y <= {sgn, body};
                    done <= 1'b1;
                    state <= S_IDLE;
                end
                default: state <= S_IDLE;
            endcase
        end
    end

    wire unused = &{1'b0, shr[119], shr[65:0]};   // the hidden bit (implied by the exponent); sticky bits
endmodule
