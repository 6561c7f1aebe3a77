// IEEE binary64 square root y = sqrt(a), correctly rounded to nearest even (so equal to numpy's
// np.sqrt whatever the algorithm); subnormal operands exact; sqrt(-0) = -0; a negative operand gives
// the default NaN 7ff8000000000000; finite operands only. rms_factor's r = 1 / sqrt(ms + eps) of
// docs/numerics.md (the division is es_fdiv).
//
// Ports (fixed): clk, rst_n, start (one-cycle pulse; taken only while busy = 0, ignored otherwise),
// a[63:0] (sampled with start), busy (1 from the cycle after start until done), done (one-cycle
// pulse: y valid), y[63:0] (held until the next done). Latency: done rises LAT = 57 cycles after the
// edge that took start; a new start may come in the cycle done is high.
//
// Algorithm: restoring digit-by-digit square root of the normalized significand (made an even power
// of two), one root bit per cycle from two radicand bits (a 58-bit compare-subtract, the one long
// path): 54 root bits = 53 + guard, the remainder's nonzero test as the sticky bit (a result is never
// subnormal and never overflows, and a tie is impossible). Steps: LZC | NORM (shift, exponent parity,
// halved exponent) | SQRT x 54 | RND (RNE increment, pack).
module es_fsqrt (
    input  logic        clk,
    input  logic        rst_n,
    input  logic        start,
    input  logic [63:0] a,
    output logic        busy,
    output logic        done,
    output logic [63:0] y
);
    /* verilator lint_off UNUSEDPARAM */
    localparam int LAT = 57;
    /* verilator lint_on UNUSEDPARAM */

    typedef enum logic [2:0] {S_IDLE, S_LZC, S_NORM, S_SQRT, S_RND} state_t;
    state_t state;

    logic               sgn, zero, neg;
    logic [52:0]        s;
    logic [11:0]        x;
    logic [5:0]         lz;
    logic signed [13:0] er;                     // biased result exponent
    logic [53:0]        rad;                    // radicand bits still to bring down, two per step
    logic [57:0]        rem;
    logic [53:0]        root;
    logic [5:0]         cnt;

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

    logic [57:0]        cand, trial;
    logic               ge;
    logic signed [13:0] e_n;
    logic [52:0]        s_n;
    logic               inc;
    logic [62:0]        body;
    // separate continuous assignments: Icarus re-evaluates each only when its own operands change
    assign cand = {rem[55:0], rad[53:52]};
    assign trial = {2'd0, root, 2'b01};
    assign ge = cand >= trial;
    assign s_n = s << lz;
    assign e_n = 14'(x) - 14'(lz);              // biased exponent of the normalized operand
    assign inc = root[0] && (root[1] || rem != 58'd0);
    assign body = {er[10:0], root[52:1]} + 63'(inc);

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
                    sgn <= a[63];
                    zero <= a[62:0] == 63'd0;
                    neg <= a[63] && a[62:0] != 63'd0;
                    s <= {a[62:52] != 11'd0, a[51:0]};
                    x <= (a[62:52] == 11'd0) ? 12'd1 : {1'b0, a[62:52]};
                    state <= S_LZC;
                end
                S_LZC: begin
                    lz <= lzc53(s);
                    state <= S_NORM;
                end
                S_NORM: begin
                    // value = s_n / 2**52 * 2**(e_n - 1023): make the power even, then halve it
                    if (e_n[0]) begin
                        rad <= {1'b0, s_n};
                        er <= ((e_n - 14'sd1023) >>> 1) + 14'sd1023;
                    end else begin
                        rad <= {s_n, 1'b0};
                        er <= ((e_n - 14'sd1024) >>> 1) + 14'sd1023;
                    end
                    rem <= 58'd0;
                    root <= 54'd0;
                    cnt <= 6'd53;
                    state <= S_SQRT;
                end
                S_SQRT: begin
                    rem <= ge ? cand - trial : cand;
                    root <= {root[52:0], ge};
                    rad <= rad << 2;
                    cnt <= cnt - 6'd1;
                    if (cnt == 6'd0) state <= S_RND;
                end
                S_RND: begin
                    if (zero) y <= {sgn, 63'd0};
                    else if (neg) y <= 64'h7ff8000000000000;
                    else y <= {1'b0, body};
                    done <= 1'b1;
                    state <= S_IDLE;
                end
                default: state <= S_IDLE;
            endcase
        end
    end

    wire unused = &{1'b0, rem[57:56], root[53], er[13:11]};
endmodule
