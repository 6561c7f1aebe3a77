// Row unit: LAST_ROW (copy the last token's row of an f32 buffer into a one-token buffer) and the
// argmax of OUTPUT with F_ARGMAX (the index of the largest float of the last token's row), behind the
// dispatch interface of docs/units.md. It shares the vector unit's read and write streams (the shell
// multiplexes them: the two never run at once), because both jobs are one row moved once.
//
// Operands (buffer-map entries, one beat each at act_base + 16*i) and checks, in this order
// (ERR_INFO = the opcode; docs/units.md "Row unit"):
//   LAST_ROW a dst, f0 src: NTOK = 0 (FIELD); a index (RANGE), a dtype f32 (FIELD); f0 index (RANGE),
//            f0 dtype f32 (FIELD); widths equal (FIELD); dst placement for one token, src placement
//            for NTOK tokens (offset 16-aligned, inside ACT_SIZE, the tile layout fits the capacity:
//            RANGE). The cpu model (host/devices/cpu_units.py) checks in the same order.
//   OUTPUT   a logits: NTOK = 0 (FIELD); a index (RANGE), dtype f32 (FIELD), placement for NTOK
//            tokens (RANGE).
// The last token t = NTOK-1 lies in tile j = t / MAXTOK at local index t % MAXTOK; its row is RB units
// (Q float32 each) at stride nt_j units (nt_j = the tokens of tile j): one read command when nt_j = 1,
// else one per unit. LAST_ROW streams the beats straight to dst (one write command), the padding
// columns (width .. RB*Q-1) set to +0 as every f32 buffer a unit writes; the argmax compares the
// floats as sign-magnitude keys (-0 = +0; NaN never wins; the first index wins ties; a row of NaN
// only gives 0), a beat of four per cycle.
// A read or write fault ends the instruction at once with ERR AXI_READ / AXI_WRITE; `abort`: stop,
// drop arriving data, wait until both streams are idle, then done (code 0).
module es_row #(
    parameter int Q = es_regs_pkg::ES_Q,
    parameter int MAXTOK = es_regs_pkg::ES_MAXTOK,
    parameter bit ARGMAX = 1'b1        // OUTPUT's argmax built (else OUTPUT is never dispatched here)
) (
    input  logic         clk,
    input  logic         rst_n,
    // a C++ word: only a module linted or built as the top would name a model member after it
    // verilator lint_off SYMRSVDWORD
    input  logic         abort,
    // verilator lint_on SYMRSVDWORD
    input  logic         go,
    input  logic [255:0] instr,
    input  logic [31:0]  n_buffers,
    input  logic [39:0]  act_base,
    input  logic [31:0]  act_size,
    input  logic [15:0]  ntok,
    output logic         busy,
    output logic         done,
    output logic [7:0]   err_code,
    output logic [31:0]  err_info,
    output logic         am_valid,      // one-cycle pulse with done: am_index is the argmax
    output logic [31:0]  am_index,
    // read stream
    output logic         rd_cmd_valid,
    input  logic         rd_cmd_ready,
    output logic [39:0]  rd_cmd_addr,
    output logic [31:0]  rd_cmd_beats,
    input  logic         rd_valid,
    output logic         rd_ready,
    input  logic [127:0] rd_data,
    input  logic         rd_busy,
    input  logic         rd_err,
    input  logic [1:0]   rd_err_resp,
    // write stream
    output logic         wr_cmd_valid,
    input  logic         wr_cmd_ready,
    output logic [39:0]  wr_cmd_addr,
    output logic [31:0]  wr_cmd_beats,
    output logic         wr_valid,
    input  logic         wr_ready,
    output logic [127:0] wr_data,
    input  logic         wr_busy,
    input  logic         wr_err,
    input  logic [1:0]   wr_err_resp
);
    localparam int MT = MAXTOK;
    localparam int LMT = $clog2(MT);
    localparam int LQ = $clog2(Q);
    localparam int LU = $clog2(4 * Q);   // bytes of a unit, log2
    localparam int LR = LU - 4;         // bus beats of a unit, log2
    localparam logic [2:0] S_IDLE = 3'd0, S_FETCH = 3'd1, S_CHECK = 3'd2, S_RUN = 3'd3, S_WAITW = 3'd4,
                           S_ABORT = 3'd5;

    logic [2:0]  state;
    logic [7:0]  op;
    logic [15:0] ia;
    logic [31:0] f0;
    logic [15:0] nt_all;
    wire         is_last = op == es_regs_pkg::ES_OP_LAST_ROW;

    // ---------------- buffer-map entries: 0 = a, 1 = f0 (LAST_ROW)
    logic [31:0] m_off [2];
    logic [31:0] m_cap [2];
    logic [31:0] m_w [2];
    logic [7:0]  m_dt [2];
    wire  [31:0] idx0 = 32'(ia), idx1 = f0;
    wire         ok0 = idx0 < n_buffers && (33'(idx0) + 33'd1) * 33'd16 <= 33'(act_size);
    wire         ok1 = idx1 < n_buffers && (33'(idx1) + 33'd1) * 33'd16 <= 33'(act_size);
    wire  [1:0]  n_it = is_last ? 2'd2 : 2'd1;
    logic [1:0]  ik, ci;               // FETCH: commands issued, entries consumed
    wire         ik_ok = ik == 2'd0 ? ok0 : ok1;
    wire         ci_ok = ci == 2'd0 ? ok0 : ok1;

    // ---------------- geometry of the row (src for LAST_ROW, the buffer for OUTPUT)
    wire  [31:0] width = is_last ? m_w[1] : m_w[0];
    wire  [31:0] rb = 32'((33'(width) + 33'(Q - 1)) >> LQ);             // units per token
    wire  [31:0] tiles = (32'(nt_all) + 32'(MT - 1)) >> LMT;
    wire  [63:0] need_one = 64'(rb) << (LMT + LU);                       // one-token tile layout
    wire  [63:0] need_all = (64'(tiles) * 64'(rb)) << (LMT + LU);
    wire  [31:0] t_last = 32'(nt_all) - 32'd1;
    wire  [31:0] j_last = t_last >> LMT;
    wire  [31:0] ntj = 32'(nt_all) - (j_last << LMT) > 32'(MT) ? 32'(MT) : 32'(nt_all) - (j_last << LMT);
    wire  [31:0] src_off = is_last ? m_off[1] : m_off[0];

    function automatic bad_place(input [31:0] off, input [31:0] cap, input [63:0] need, input [31:0] asz);
        bad_place = off[3:0] != 4'd0 || 33'(off) + 33'(cap) > 33'(asz) || need > 64'(cap);
    endfunction

    // ck_r: the checks registered in FETCH's last cycle (ci == n_it: every entry is in m_* and nothing ck
    // reads changes before S_CHECK), so S_CHECK acts on a register and the compares stay off its paths
    logic [7:0] ck, ck_r;
    always_comb begin
        ck = es_regs_pkg::ES_ERR_NONE;
        if (nt_all == 16'd0) ck = es_regs_pkg::ES_ERR_FIELD;
        else if (!ok0) ck = es_regs_pkg::ES_ERR_RANGE;
        else if (m_dt[0] != es_regs_pkg::ES_B_F32) ck = es_regs_pkg::ES_ERR_FIELD;
        else if (is_last) begin
            if (!ok1) ck = es_regs_pkg::ES_ERR_RANGE;
            else if (m_dt[1] != es_regs_pkg::ES_B_F32) ck = es_regs_pkg::ES_ERR_FIELD;
            else if (m_w[0] != m_w[1]) ck = es_regs_pkg::ES_ERR_FIELD;
            else if (bad_place(m_off[0], m_cap[0], need_one, act_size)) ck = es_regs_pkg::ES_ERR_RANGE;
            else if (bad_place(m_off[1], m_cap[1], need_all, act_size)) ck = es_regs_pkg::ES_ERR_RANGE;
        end else begin
            if (bad_place(m_off[0], m_cap[0], need_all, act_size)) ck = es_regs_pkg::ES_ERR_RANGE;
        end
    end

    // ---------------- streams of the row
    logic [31:0] rc_left;              // read commands left
    logic [39:0] rc_addr;
    logic        one_cmd;              // nt_j = 1: the row is contiguous
    logic [31:0] beats_left;           // row beats still to come
    logic [31:0] col;                  // first column of the next beat
    logic        wc_sent;
    logic [31:0] row_beats;
    assign row_beats = rb << LR;

    assign rd_cmd_valid = (state == S_FETCH && ik != n_it && ik_ok) || (state == S_RUN && rc_left != 32'd0);
    assign rd_cmd_addr = state == S_FETCH ? act_base + (40'(ik == 2'd0 ? idx0 : idx1) << 4) : rc_addr;
    assign rd_cmd_beats = state == S_FETCH ? 32'd1 : one_cmd ? row_beats : (32'd1 << LR);
    assign wr_cmd_valid = state == S_RUN && is_last && !wc_sent;
    assign wr_cmd_addr = act_base + 40'(m_off[0]);
    assign wr_cmd_beats = row_beats;

    // in_row[k] = col + k < width, kept as a register beside col (set in S_CHECK, advanced with col), so
    // the beat's masking and the argmax keys do not start behind a 32-bit add and compare
    logic [3:0]   in_row;
    logic [3:0]   in_row_nxt;      // for col + 4
    always_comb begin
        for (int k = 0; k < 4; k++) in_row_nxt[k] = col + 32'(4 + k) < width;
    end
    logic [127:0] masked;
    always_comb begin
        for (int k = 0; k < 4; k++)
            masked[32*k +: 32] = in_row[k] ? rd_data[32*k +: 32] : 32'd0;
    end
    wire take = state == S_RUN && beats_left != 32'd0 && rd_valid && (!is_last || wr_ready);
    assign wr_valid = state == S_RUN && is_last && beats_left != 32'd0 && rd_valid;
    assign wr_data = masked;
    assign rd_ready = state == S_ABORT || (state == S_FETCH && ci != n_it && ci_ok)
                      || (state == S_RUN && beats_left != 32'd0 && (!is_last || wr_ready));

    // ---------------- argmax: the beat's best lane (registered), then the running best
    // {valid, key}: keys order as the floats do (+0 and -0 equal); padding and NaN are not valid
    function automatic [32:0] fkey(input [31:0] x, input inr);
        if (!inr || (x[30:23] == 8'hFF && x[22:0] != 23'd0)) fkey = '0;
        else if (x[30:0] == 31'd0) fkey = {1'b1, 32'h8000_0000};
        else if (!x[31]) fkey = {1'b1, x | 32'h8000_0000};
        else fkey = {1'b1, ~x};
    endfunction
    logic        pa_v;
    logic [32:0] pa_key;               // {valid, key}
    logic [31:0] pa_idx;
    logic [32:0] best_key;
    logic [31:0] best_idx;
    logic [32:0] lk [4];
    logic [32:0] bk, bk01, bk23;
    logic [1:0]  bi;
    logic        b01, b23, bhi;
    // the best of four as a tree of pairs (0 vs 1, 2 vs 3, then the two winners), each pick the lower
    // lane unless the upper is valid and strictly larger: the same lane as a scan from lane 0 (first
    // index wins ties, an invalid lane never wins), two compares deep instead of three
    always_comb begin
        for (int k = 0; k < 4; k++) lk[k] = fkey(rd_data[32*k +: 32], in_row[k]);
        b01 = lk[1][32] && (!lk[0][32] || lk[1][31:0] > lk[0][31:0]);
        b23 = lk[3][32] && (!lk[2][32] || lk[3][31:0] > lk[2][31:0]);
        bk01 = b01 ? lk[1] : lk[0];
        bk23 = b23 ? lk[3] : lk[2];
        bhi = bk23[32] && (!bk01[32] || bk23[31:0] > bk01[31:0]);
        bk = bhi ? bk23 : bk01;
        bi = bhi ? {1'b1, b23} : {1'b0, b01};
    end
    wire pa_better = pa_key[32] && (!best_key[32] || pa_key[31:0] > best_key[31:0]);

    always_ff @(posedge clk) begin
        done <= 1'b0;
        am_valid <= 1'b0;
        if (!rst_n) begin
            state <= S_IDLE;
            err_code <= '0;
            err_info <= '0;
            am_index <= '0;
            pa_v <= 1'b0;
        end else if (abort && state != S_IDLE && state != S_ABORT) begin
            state <= S_ABORT;
        end else if ((state == S_FETCH || state == S_RUN || state == S_WAITW) && (rd_err || wr_err)) begin
            done <= 1'b1;
            err_code <= rd_err ? es_regs_pkg::ES_ERR_AXI_READ : es_regs_pkg::ES_ERR_AXI_WRITE;
            err_info <= {30'd0, rd_err ? rd_err_resp : wr_err_resp};
            state <= S_IDLE;
        end else begin
            case (state)
                S_IDLE: if (go) begin
                    op <= instr[7:0];
                    ia <= instr[31:16];
                    f0 <= instr[63:32];
                    nt_all <= ntok;
                    ik <= '0;
                    ci <= '0;
                    err_code <= '0;
                    err_info <= {24'd0, instr[7:0]};
                    state <= S_FETCH;
                end
                S_FETCH: begin
                    if (ik != n_it && !ik_ok) ik <= ik + 2'd1;
                    else if (rd_cmd_valid && rd_cmd_ready) ik <= ik + 2'd1;
                    if (ci == n_it) begin
                        ck_r <= ck;
                        state <= S_CHECK;
                    end else if (!ci_ok) begin
                        ci <= ci + 2'd1;
                    end else if (rd_valid) begin
                        m_off[ci[0]] <= rd_data[31:0];
                        m_cap[ci[0]] <= rd_data[63:32];
                        m_w[ci[0]] <= rd_data[95:64];
                        m_dt[ci[0]] <= rd_data[103:96];
                        ci <= ci + 2'd1;
                    end
                end
                S_CHECK: begin
                    if (ck_r != es_regs_pkg::ES_ERR_NONE) begin
                        err_code <= ck_r;
                        done <= 1'b1;
                        state <= S_IDLE;
                    end else begin
                        one_cmd <= ntj == 32'd1;
                        rc_left <= ntj == 32'd1 ? 32'd1 : rb;
                        rc_addr <= act_base + 40'(src_off) + 40'((64'(j_last) * 64'(rb)) << (LMT + LU))
                                   + (40'(t_last[LMT-1:0]) << LU);
                        beats_left <= row_beats;
                        col <= '0;
                        for (int k = 0; k < 4; k++) in_row[k] <= 32'(k) < width;
                        wc_sent <= 1'b0;
                        pa_v <= 1'b0;
                        best_key <= '0;
                        best_idx <= '0;
                        state <= S_RUN;
                    end
                end
                S_RUN: begin
                    if (rd_cmd_valid && rd_cmd_ready) begin
                        rc_left <= rc_left - 32'd1;
                        rc_addr <= rc_addr + (40'(ntj) << LU);
                    end
                    if (wr_cmd_valid && wr_cmd_ready) wc_sent <= 1'b1;
                    pa_v <= take;
                    if (take) begin
                        beats_left <= beats_left - 32'd1;
                        col <= col + 32'd4;
                        in_row <= in_row_nxt;
                        pa_key <= bk;
                        pa_idx <= col | 32'(bi);   // col is a multiple of 4
                    end
                    if (pa_v && pa_better) begin
                        best_key <= pa_key;
                        best_idx <= pa_idx;
                    end
                    if (beats_left == 32'd0 && !pa_v && (!is_last || wc_sent)) state <= S_WAITW;
                end
                S_WAITW: if (!wr_busy) begin
                    done <= 1'b1;
                    if (!is_last && ARGMAX) begin
                        am_valid <= 1'b1;
                        am_index <= best_idx;
                    end
                    state <= S_IDLE;
                end
                S_ABORT: if (!rd_busy && !wr_busy) begin
                    done <= 1'b1;
                    err_code <= '0;
                    state <= S_IDLE;
                end
                default: state <= S_IDLE;
            endcase
        end
    end

    assign busy = state != S_IDLE;

    wire unused = &{1'b0, instr[255:64], instr[15:8], m_cap[1][3:0], rd_busy};
endmodule
