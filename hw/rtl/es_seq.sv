// Sequencer: fetches the descriptor program (32 bytes = two bus beats per descriptor) and runs it.
//   HEADER  (must come first): word 1 = configuration ID, checked against this build's.
//   MATMUL  word 0: [7:0] op, [11:8] weight bits, [12] bit-serial, [23:16] ntok, [39:24] K, [63:40] N
//           word 1: [31:0] weight offset (from WGT_BASE), [63:32] activation offset (from ACT_BASE)
//           word 0 [13] DEQUANT: results are float32 y = float32(acc) * float32(beta * s[t]) (es_dequant):
//           the activation stream starts with ceil(ntok/4) beats of float32 s[t], and a fourth
//           reader streams one beat of Q float32 beta per row batch from WGT_BASE + word 2[63:32].
//           word 2: [31:0] result offset (from RES_BASE), [63:32] beta offset (DEQUANT; else 0);
//           word 3 is reserved (0).
//           Checks fields and region bounds, then runs one tlmm_engine command with three streams
//           (activations and weights read, results written) and waits for the last write response.
//   END     the program is done.
// Any fault (ERR_* codes) aborts every stream: the read masters drop data until nothing is in flight,
// the write master finishes a started burst with empty strobes, the engine is held in reset; then
// the sequencer is idle with STATUS.ERROR and ERR_CODE/ERR_INFO set. SOFT_RESET does the same
// from any state and clears the status. Layouts: docs/registers.md.
module es_seq #(
    parameter logic [63:0] CONFIG_ID = es_regs_pkg::ES_CONFIG_ID,
    parameter int G = es_regs_pkg::ES_G,
    parameter int T = es_regs_pkg::ES_T,
    parameter int Q = es_regs_pkg::ES_Q,
    parameter int MAXK = es_regs_pkg::ES_MAXK,
    parameter int MAXTOK = es_regs_pkg::ES_MAXTOK,
    parameter int SPB = 2             // activation group slots per bus beat
) (
    input  logic         clk,
    input  logic         rst_n,
    input  logic         start,
    input  logic         soft_reset,
    input  logic [39:0]  prog_base,
    input  logic [31:0]  prog_len,
    input  logic [39:0]  wgt_base,
    input  logic [31:0]  wgt_size,
    input  logic [39:0]  act_base,
    input  logic [31:0]  act_size,
    input  logic [39:0]  res_base,
    input  logic [31:0]  res_size,
    // program stream
    output logic         p_cmd_valid,
    input  logic         p_cmd_ready,
    output logic [39:0]  p_cmd_addr,
    output logic [31:0]  p_cmd_beats,
    input  logic         p_valid,
    output logic         p_ready,
    input  logic [127:0] p_data,
    input  logic         p_busy,
    input  logic         p_err,
    input  logic [1:0]   p_err_resp,
    // activation reader
    output logic         a_cmd_valid,
    input  logic         a_cmd_ready,
    output logic [39:0]  a_cmd_addr,
    output logic [31:0]  a_cmd_beats,
    input  logic         a_busy,
    input  logic         a_err,
    input  logic [1:0]   a_err_resp,
    // weight reader
    output logic         w_cmd_valid,
    input  logic         w_cmd_ready,
    output logic [39:0]  w_cmd_addr,
    output logic [31:0]  w_cmd_beats,
    input  logic         w_busy,
    input  logic         w_err,
    input  logic [1:0]   w_err_resp,
    // beta reader (DEQUANT)
    output logic         b_cmd_valid,
    input  logic         b_cmd_ready,
    output logic [39:0]  b_cmd_addr,
    output logic [31:0]  b_cmd_beats,
    input  logic         b_busy,
    input  logic         b_err,
    input  logic [1:0]   b_err_resp,
    output logic         dq_en,
    output logic [7:0]   dq_ntok,
    output logic [7:0]   dq_sbeats,
    // result writer
    output logic         r_cmd_valid,
    input  logic         r_cmd_ready,
    output logic [39:0]  r_cmd_addr,
    output logic [31:0]  r_cmd_beats,
    input  logic         r_busy,
    input  logic         r_err,
    input  logic [1:0]   r_err_resp,
    // engine
    output logic         e_cmd_valid,
    input  logic         e_cmd_ready,
    output logic [63:0]  e_cmd_data,
    input  logic         e_busy,
    input  logic         e_err_code,
    output logic         e_reset,
    // activation unpacker
    output logic         u_clear,
    output logic [15:0]  u_groups,
    // everything stops
    output logic         abort,
    // status
    output logic         st_busy,
    output logic         st_done,
    output logic         st_error,
    output logic         st_resetting,
    output logic [31:0]  err_code,
    output logic [31:0]  err_info,
    output logic         desc_fire
);
    localparam int LT = $clog2(T);
    localparam int LQ = $clog2(Q);
    localparam int LS = $clog2(SPB);
    localparam longint RECIP = ((64'd1 << 24) + 64'(G) - 64'd1) / 64'(G);   // ceil(2**24 / G)

    typedef enum logic [3:0] {
        S_IDLE, S_FETCH0, S_FETCH1, S_DECODE, S_CALC1, S_CALC2, S_CALC3, S_CALC4, S_CHECK, S_LAUNCH,
        S_RUN, S_NEXT, S_FINISH, S_FAIL, S_RESET
    } state_t;
    state_t state;

    logic [63:0] w0, w1, w2;
    logic [15:0] desc_idx;
    logic        first;
    logic [7:0]  fail_code;
    logic [31:0] fail_info;

    // fields of the current MATMUL
    wire [7:0]  d_op = w0[7:0];
    wire [3:0]  d_bits = w0[11:8];
    wire        d_bs = w0[12];
    wire        d_dq = w0[13];
    wire [7:0]  d_ntok = w0[23:16];
    wire [15:0] d_k = w0[39:24];
    wire [23:0] d_n = w0[63:40];
    wire [31:0] d_woff = w1[31:0];
    wire [31:0] d_aoff = w1[63:32];
    wire [31:0] d_roff = w2[31:0];
    wire [31:0] d_boff = w2[63:32];
    wire [7:0]  d_sb = d_dq ? 8'((32'(d_ntok) + 32'd3) >> 2) : 8'd0;   // s[t] beats before the activations

    logic [15:0] groups, chunks, abt;
    logic [23:0] rb;
    logic [3:0]  planes;
    logic [63:0] rp, wbeats, abeats, rbeats;
    logic        sent_a, sent_w, sent_r, sent_e, sent_b;

    wire any_rd_err = p_err || a_err || w_err || b_err;
    wire [1:0] rd_resp = p_err ? p_err_resp : a_err ? a_err_resp : w_err ? w_err_resp : b_err_resp;
    wire draining = state == S_FINISH || state == S_FAIL || state == S_RESET;
    wire all_idle = !p_busy && !a_busy && !w_busy && !r_busy && !b_busy;
    wire working = state != S_IDLE && !draining;

    assign abort = draining;
    assign e_reset = state == S_FAIL || state == S_RESET;
    assign p_cmd_addr = prog_base;
    assign p_cmd_beats = {prog_len[30:0], 1'b0};
    assign p_ready = state == S_FETCH0 || state == S_FETCH1;
    assign a_cmd_addr = act_base + 40'(d_aoff);
    assign a_cmd_beats = abeats[31:0] + 32'(d_sb);
    assign w_cmd_addr = wgt_base + 40'(d_woff);
    assign w_cmd_beats = wbeats[31:0];
    assign r_cmd_addr = res_base + 40'(d_roff);
    assign r_cmd_beats = rbeats[31:0];
    assign b_cmd_addr = wgt_base + 40'(d_boff);
    assign b_cmd_beats = 32'(rb);
    assign b_cmd_valid = state == S_LAUNCH && !sent_b;
    assign dq_en = d_dq;
    assign dq_ntok = d_ntok;
    assign dq_sbeats = d_sb;
    assign a_cmd_valid = state == S_LAUNCH && !sent_a;
    assign w_cmd_valid = state == S_LAUNCH && !sent_w;
    assign r_cmd_valid = state == S_LAUNCH && !sent_r;
    assign e_cmd_valid = state == S_LAUNCH && !sent_e;
    assign e_cmd_data = {11'd0, d_bs, d_bs ? d_bits : 4'd1, d_ntok, d_n, d_k};
    assign u_clear = state == S_LAUNCH;
    assign u_groups = groups;
    assign st_busy = state != S_IDLE;
    assign st_resetting = state == S_RESET;
    assign desc_fire = state == S_DECODE;

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            state <= S_IDLE;
            p_cmd_valid <= 1'b0;
            st_done <= 1'b0;
            st_error <= 1'b0;
            err_code <= '0;
            err_info <= '0;
            sent_a <= 1'b0;
            sent_w <= 1'b0;
            sent_r <= 1'b0;
            sent_e <= 1'b0;
            sent_b <= 1'b0;
        end else begin
            if (p_cmd_valid && p_cmd_ready) p_cmd_valid <= 1'b0;
            if (a_cmd_valid && a_cmd_ready) sent_a <= 1'b1;
            if (w_cmd_valid && w_cmd_ready) sent_w <= 1'b1;
            if (r_cmd_valid && r_cmd_ready) sent_r <= 1'b1;
            if (e_cmd_valid && e_cmd_ready) sent_e <= 1'b1;
            if (b_cmd_valid && b_cmd_ready) sent_b <= 1'b1;

            if (soft_reset) begin
                state <= S_RESET;
                p_cmd_valid <= 1'b0;
                st_done <= 1'b0;
                st_error <= 1'b0;
                err_code <= '0;
                err_info <= '0;
            end else if (working && (any_rd_err || r_err)) begin
                state <= S_FAIL;
                p_cmd_valid <= 1'b0;
                fail_code <= any_rd_err ? es_regs_pkg::ES_ERR_AXI_READ : es_regs_pkg::ES_ERR_AXI_WRITE;
                fail_info <= {30'd0, any_rd_err ? rd_resp : r_err_resp};
            end else begin
                case (state)
                    S_IDLE: if (start) begin
                        st_done <= 1'b0;
                        st_error <= 1'b0;
                        err_code <= '0;
                        err_info <= '0;
                        desc_idx <= '0;
                        first <= 1'b1;
                        if (prog_len == 32'd0) begin
                            state <= S_FAIL;
                            fail_code <= es_regs_pkg::ES_ERR_PROG_LEN;
                            fail_info <= '0;
                        end else begin
                            p_cmd_valid <= 1'b1;
                            state <= S_FETCH0;
                        end
                    end
                    S_FETCH0: if (p_valid) begin
                        w0 <= p_data[63:0];
                        w1 <= p_data[127:64];
                        state <= S_FETCH1;
                    end
                    S_FETCH1: if (p_valid) begin
                        w2 <= p_data[63:0];
                        state <= S_DECODE;
                    end
                    S_DECODE: begin
                        first <= 1'b0;
                        fail_info <= {24'd0, d_op};
                        if (first && d_op != es_regs_pkg::ES_OP_HEADER) begin
                            state <= S_FAIL;
                            fail_code <= es_regs_pkg::ES_ERR_OPCODE;
                        end else if (d_op == es_regs_pkg::ES_OP_HEADER) begin
                            if (w1 != CONFIG_ID) begin
                                state <= S_FAIL;
                                fail_code <= es_regs_pkg::ES_ERR_CONFIG;
                            end else begin
                                state <= S_NEXT;
                            end
                        end else if (d_op == es_regs_pkg::ES_OP_END) begin
                            state <= S_FINISH;
                        end else if (d_op == es_regs_pkg::ES_OP_MATMUL) begin
                            state <= S_CALC1;
                        end else begin
                            state <= S_FAIL;
                            fail_code <= es_regs_pkg::ES_ERR_OPCODE;
                        end
                    end
                    S_CALC1: begin
                        fail_info <= '0;
                        if (d_k == 16'd0 || 32'(d_k) > 32'(MAXK) || d_n == 24'd0 || d_ntok == 8'd0
                            || 32'(d_ntok) > 32'(MAXTOK) || (d_bs && (d_bits < 4'd2 || d_bits > 4'd8))
                            || (!d_bs && d_bits != 4'd0)) begin
                            state <= S_FAIL;
                            fail_code <= es_regs_pkg::ES_ERR_FIELD;
                        end else if (d_woff[3:0] != 4'd0 || d_aoff[3:0] != 4'd0 || d_roff[3:0] != 4'd0
                                     || (d_dq && d_boff[3:0] != 4'd0)) begin
                            state <= S_FAIL;
                            fail_code <= es_regs_pkg::ES_ERR_RANGE;
                        end else begin
                            groups <= 16'(((64'(d_k) + 64'(G - 1)) * 64'(RECIP)) >> 24);
                            state <= S_CALC2;
                        end
                    end
                    S_CALC2: begin
                        chunks <= 16'((32'(groups) + 32'(T - 1)) >> LT);
                        abt <= 16'((32'(groups) + 32'(SPB - 1)) >> LS);
                        rb <= 24'((32'(d_n) + 32'(Q - 1)) >> LQ);
                        planes <= d_bs ? d_bits : 4'd1;
                        state <= S_CALC3;
                    end
                    S_CALC3: begin
                        rp <= 64'(rb) * 64'(planes);
                        abeats <= 64'(abt) * 64'(d_ntok);
                        rbeats <= 64'(rb) * 64'(d_ntok);
                        state <= S_CALC4;
                    end
                    S_CALC4: begin
                        wbeats <= rp * 64'(chunks);
                        state <= S_CHECK;
                    end
                    S_CHECK: begin
                        if (64'(d_woff) + (wbeats << 4) > 64'(wgt_size)
                            || 64'(d_aoff) + ((abeats + 64'(d_sb)) << 4) > 64'(act_size)
                            || (d_dq && 64'(d_boff) + (64'(rb) << 4) > 64'(wgt_size))
                            || 64'(d_roff) + (rbeats << 4) > 64'(res_size)) begin
                            state <= S_FAIL;
                            fail_code <= es_regs_pkg::ES_ERR_RANGE;
                        end else begin
                            sent_a <= 1'b0;
                            sent_w <= 1'b0;
                            sent_r <= 1'b0;
                            sent_e <= 1'b0;
                            sent_b <= !d_dq;
                            state <= S_LAUNCH;
                        end
                    end
                    S_LAUNCH: if ((sent_a || a_cmd_ready) && (sent_w || w_cmd_ready) && (sent_r || r_cmd_ready)
                                  && (sent_e || e_cmd_ready) && (sent_b || b_cmd_ready)) begin
                        state <= S_RUN;
                    end
                    S_RUN: if (!a_busy && !w_busy && !r_busy && !e_busy && !b_busy) begin
                        if (e_err_code) begin
                            state <= S_FAIL;
                            fail_code <= es_regs_pkg::ES_ERR_CODE;
                            fail_info <= '0;
                        end else begin
                            state <= S_NEXT;
                        end
                    end
                    S_NEXT: begin
                        desc_idx <= desc_idx + 16'd1;
                        if (32'(desc_idx) + 32'd1 >= prog_len) begin
                            state <= S_FAIL;
                            fail_code <= es_regs_pkg::ES_ERR_PROG_LEN;
                            fail_info <= '0;
                        end else begin
                            state <= S_FETCH0;
                        end
                    end
                    S_FINISH: if (all_idle) begin
                        st_done <= 1'b1;
                        state <= S_IDLE;
                    end
                    S_FAIL: if (all_idle) begin
                        st_error <= 1'b1;
                        err_code <= {desc_idx, 8'd0, fail_code};
                        err_info <= fail_info;
                        state <= S_IDLE;
                    end
                    S_RESET: if (all_idle) begin
                        state <= S_IDLE;
                    end
                    default: state <= S_IDLE;
                endcase
            end
        end
    end

    wire unused = &{1'b0, w0[15:14]};
endmodule
