// Bench-only wrapper: the attention unit (es_attn) with its own read and write masters
// (es_axi_rd, es_axi_wr, as the shell gives each unit) on one AXI4 master port, so cocotbext-axi's
// AXI RAM (sim/sim_server.py's DdrModel) is the DDR. The dispatch signals are driven by the bench.
// KVP > 1: the KV stream on KVP read-only ports m_axi_w0.. (one es_axi_rd each, one command to all, as
// the shell's weight ports: port p at cmd_addr + p * stride); the unused ones (all four at KVP = 1) are
// tied off: ARVALID 0, RREADY 1.
module es_attn_bench #(
    parameter int Q = 16,
    parameter int MAXTOK = 4,
    parameter int DMAX = 256,
    parameter int SMAX = 4096,
    parameter int NQ = 4,
    parameter int KVP = 1
) (
    input  logic         clk,
    input  logic         rst_n,
    input  logic         stop,          // the unit's abort (SOFT_RESET / a fault elsewhere)
    input  logic         go,
    input  logic [255:0] instr,
    input  logic [31:0]  n_buffers,
    input  logic [39:0]  act_base,
    input  logic [31:0]  act_size,
    input  logic [39:0]  kv_base,
    input  logic [31:0]  kv_size,
    input  logic [15:0]  ntok,
    input  logic [31:0]  pos0,
    output logic         busy,
    output logic         done,
    output logic [7:0]   err_code,
    output logic [31:0]  err_info,
    output logic [31:0]  cyc_store,
    output logic [31:0]  cyc_attend,
    output logic [31:0]  rd_beats,
    output logic [31:0]  wr_beats,
    output logic [1:0]   m_axi_arid,
    output logic [39:0]  m_axi_araddr,
    output logic [7:0]   m_axi_arlen,
    output logic [2:0]   m_axi_arsize,
    output logic [1:0]   m_axi_arburst,
    output logic         m_axi_arvalid,
    input  logic         m_axi_arready,
    input  logic [1:0]   m_axi_rid,
    input  logic [127:0] m_axi_rdata,
    input  logic [1:0]   m_axi_rresp,
    input  logic         m_axi_rlast,
    input  logic         m_axi_rvalid,
    output logic         m_axi_rready,
    output logic [1:0]   m_axi_awid,
    output logic [39:0]  m_axi_awaddr,
    output logic [7:0]   m_axi_awlen,
    output logic [2:0]   m_axi_awsize,
    output logic [1:0]   m_axi_awburst,
    output logic         m_axi_awvalid,
    input  logic         m_axi_awready,
    output logic [127:0] m_axi_wdata,
    output logic [15:0]  m_axi_wstrb,
    output logic         m_axi_wlast,
    output logic         m_axi_wvalid,
    input  logic         m_axi_wready,
    input  logic [1:0]   m_axi_bid,
    input  logic [1:0]   m_axi_bresp,
    input  logic         m_axi_bvalid,
    output logic         m_axi_bready,
    output logic [0:0]   m_axi_w0_arid,
    output logic [39:0]  m_axi_w0_araddr,
    output logic [7:0]   m_axi_w0_arlen,
    output logic [2:0]   m_axi_w0_arsize,
    output logic [1:0]   m_axi_w0_arburst,
    output logic         m_axi_w0_arvalid,
    input  logic         m_axi_w0_arready,
    input  logic [0:0]   m_axi_w0_rid,
    input  logic [127:0] m_axi_w0_rdata,
    input  logic [1:0]   m_axi_w0_rresp,
    input  logic         m_axi_w0_rlast,
    input  logic         m_axi_w0_rvalid,
    output logic         m_axi_w0_rready,
    output logic [0:0]   m_axi_w1_arid,
    output logic [39:0]  m_axi_w1_araddr,
    output logic [7:0]   m_axi_w1_arlen,
    output logic [2:0]   m_axi_w1_arsize,
    output logic [1:0]   m_axi_w1_arburst,
    output logic         m_axi_w1_arvalid,
    input  logic         m_axi_w1_arready,
    input  logic [0:0]   m_axi_w1_rid,
    input  logic [127:0] m_axi_w1_rdata,
    input  logic [1:0]   m_axi_w1_rresp,
    input  logic         m_axi_w1_rlast,
    input  logic         m_axi_w1_rvalid,
    output logic         m_axi_w1_rready,
    output logic [0:0]   m_axi_w2_arid,
    output logic [39:0]  m_axi_w2_araddr,
    output logic [7:0]   m_axi_w2_arlen,
    output logic [2:0]   m_axi_w2_arsize,
    output logic [1:0]   m_axi_w2_arburst,
    output logic         m_axi_w2_arvalid,
    input  logic         m_axi_w2_arready,
    input  logic [0:0]   m_axi_w2_rid,
    input  logic [127:0] m_axi_w2_rdata,
    input  logic [1:0]   m_axi_w2_rresp,
    input  logic         m_axi_w2_rlast,
    input  logic         m_axi_w2_rvalid,
    output logic         m_axi_w2_rready,
    output logic [0:0]   m_axi_w3_arid,
    output logic [39:0]  m_axi_w3_araddr,
    output logic [7:0]   m_axi_w3_arlen,
    output logic [2:0]   m_axi_w3_arsize,
    output logic [1:0]   m_axi_w3_arburst,
    output logic         m_axi_w3_arvalid,
    input  logic         m_axi_w3_arready,
    input  logic [0:0]   m_axi_w3_rid,
    input  logic [127:0] m_axi_w3_rdata,
    input  logic [1:0]   m_axi_w3_rresp,
    input  logic         m_axi_w3_rlast,
    input  logic         m_axi_w3_rvalid,
    output logic         m_axi_w3_rready
);
    logic         rc_valid, rc_ready, rd_valid, rd_ready, rd_busy, rd_err;
    logic [39:0]  rc_addr;
    logic [31:0]  rc_beats;
    logic [127:0] rd_data;
    logic [1:0]   rd_err_resp;
    logic         wc_valid, wc_ready, wd_valid, wd_ready, wr_busy, wr_err;
    logic [39:0]  wc_addr;
    logic [31:0]  wc_beats;
    logic [127:0] wd_data;
    logic [1:0]   wr_err_resp;

    logic         kc_valid, kc_ready, kv_valid, kv_ready, kv_busy, kv_err;
    logic [39:0]  kc_addr;
    logic [31:0]  kc_beats, kc_stride;
    logic [KVP*128-1:0] kv_data;
    logic [1:0]   kv_err_resp;

    es_attn #(.Q(Q), .MAXTOK(MAXTOK), .DMAX(DMAX), .SMAX(SMAX), .NQ(NQ), .KVP(KVP)) u_attn (
        .clk, .rst_n, .abort(stop), .go, .instr, .prog_base(40'd0), .prog_size(32'd0), .n_regions(32'd0), .n_buffers,
        .wgt_base(40'd0), .wgt_size(32'd0), .act_base, .act_size, .kv_base, .kv_size, .ntok, .pos0,
        .busy, .done, .err_code, .err_info,
        .rd_cmd_valid(rc_valid), .rd_cmd_ready(rc_ready), .rd_cmd_addr(rc_addr), .rd_cmd_beats(rc_beats),
        .rd_valid, .rd_ready, .rd_data, .rd_busy, .rd_err, .rd_err_resp,
        .kv_cmd_valid(kc_valid), .kv_cmd_ready(kc_ready), .kv_cmd_addr(kc_addr), .kv_cmd_beats(kc_beats),
        .kv_cmd_stride(kc_stride), .kv_valid, .kv_ready, .kv_data, .kv_busy, .kv_err, .kv_err_resp,
        .wr_cmd_valid(wc_valid), .wr_cmd_ready(wc_ready), .wr_cmd_addr(wc_addr), .wr_cmd_beats(wc_beats),
        .wr_valid(wd_valid), .wr_ready(wd_ready), .wr_data(wd_data), .wr_busy, .wr_err, .wr_err_resp,
        .cyc_store, .cyc_attend
    );

    es_axi_rd #(.BURST(16), .OUTST(16), .FIFO(256)) u_rd (
        .clk, .rst_n, .abort(stop),
        .cmd_valid(rc_valid), .cmd_ready(rc_ready), .cmd_addr(rc_addr), .cmd_beats(rc_beats),
        .ar_valid(m_axi_arvalid), .ar_ready(m_axi_arready), .ar_addr(m_axi_araddr), .ar_len(m_axi_arlen),
        .r_valid(m_axi_rvalid), .r_ready(m_axi_rready), .r_data(m_axi_rdata), .r_resp(m_axi_rresp),
        .r_last(m_axi_rlast),
        .out_valid(rd_valid), .out_ready(rd_ready), .out_data(rd_data),
        .busy(rd_busy), .err(rd_err), .err_resp(rd_err_resp)
    );
    es_axi_wr #(.BURST(16), .FIFO(32)) u_wr (
        .clk, .rst_n, .abort(stop),
        .cmd_valid(wc_valid), .cmd_ready(wc_ready), .cmd_addr(wc_addr), .cmd_beats(wc_beats),
        .in_valid(wd_valid), .in_ready(wd_ready), .in_data(wd_data),
        .aw_valid(m_axi_awvalid), .aw_ready(m_axi_awready), .aw_addr(m_axi_awaddr), .aw_len(m_axi_awlen),
        .w_valid(m_axi_wvalid), .w_ready(m_axi_wready), .w_data(m_axi_wdata), .w_strb(m_axi_wstrb),
        .w_last(m_axi_wlast), .b_valid(m_axi_bvalid), .b_ready(m_axi_bready), .b_resp(m_axi_bresp),
        .busy(wr_busy), .err(wr_err), .err_resp(wr_err_resp)
    );
    // ---- the KV stream's ports (sized as the shell's weight ports: BURST 16, 256 beats each)
    logic [3:0]   kp_arv, kp_arr, kp_rv, kp_rrdy, kp_rl;
    logic [39:0]  kp_ara [4];
    logic [7:0]   kp_arl [4];
    logic [127:0] kp_rd [4];
    logic [1:0]   kp_rr [4];
    logic [2:0]   kv_rbeats;
    if (KVP > 1) begin : g_kv
        logic [KVP-1:0] c_rdy, o_v, b_busy, b_err;
        logic [1:0]     b_resp [KVP];
        wire all_v = &o_v;
        assign kc_ready = &c_rdy;
        assign kv_valid = all_v;
        for (genvar p = 0; p < KVP; p++) begin : g_p
            es_axi_rd #(.BURST(16), .OUTST(16), .FIFO(256)) u_krd (
                .clk, .rst_n, .abort(stop),
                .cmd_valid(kc_valid && kc_ready), .cmd_ready(c_rdy[p]),
                .cmd_addr(kc_addr + 40'(p) * 40'(kc_stride)), .cmd_beats(kc_beats),
                .ar_valid(kp_arv[p]), .ar_ready(kp_arr[p]), .ar_addr(kp_ara[p]), .ar_len(kp_arl[p]),
                .r_valid(kp_rv[p]), .r_ready(kp_rrdy[p]), .r_data(kp_rd[p]), .r_resp(kp_rr[p]), .r_last(kp_rl[p]),
                .out_valid(o_v[p]), .out_ready(kv_ready && all_v), .out_data(kv_data[128*p +: 128]),
                .busy(b_busy[p]), .err(b_err[p]), .err_resp(b_resp[p])
            );
        end
        for (genvar p = KVP; p < 4; p++) begin : g_off
            assign kp_arv[p] = 1'b0;
            assign kp_ara[p] = '0;
            assign kp_arl[p] = '0;
            assign kp_rrdy[p] = 1'b1;
            wire unused_p = &{1'b0, kp_arr[p], kp_rv[p], kp_rl[p], kp_rd[p], kp_rr[p]};
        end
        assign kv_busy = |b_busy;
        assign kv_err = |b_err;
        always_comb begin
            kv_err_resp = 2'b00;
            for (int p = KVP - 1; p >= 0; p--) if (b_err[p]) kv_err_resp = b_resp[p];
        end
        always_comb begin
            kv_rbeats = '0;
            for (int p = 0; p < KVP; p++) kv_rbeats = kv_rbeats + 3'(kp_rv[p] && kp_rrdy[p]);
        end
    end else begin : g_kv1
        for (genvar p = 0; p < 4; p++) begin : g_off
            assign kp_arv[p] = 1'b0;
            assign kp_ara[p] = '0;
            assign kp_arl[p] = '0;
            assign kp_rrdy[p] = 1'b1;
        end
        assign kc_ready = 1'b0;
        assign kv_valid = 1'b0;
        assign kv_data = '0;
        assign kv_busy = 1'b0;
        assign kv_err = 1'b0;
        assign kv_err_resp = 2'b00;
        assign kv_rbeats = '0;
        wire unused_k = &{1'b0, kc_valid, kc_addr, kc_beats, kc_stride, kv_ready, kp_arr, kp_rv, kp_rl,
                          kp_rd[0], kp_rd[1], kp_rd[2], kp_rd[3], kp_rr[0], kp_rr[1], kp_rr[2], kp_rr[3]};
    end
    assign m_axi_w0_arid = 1'b0;
    assign m_axi_w0_araddr = kp_ara[0];
    assign m_axi_w0_arlen = kp_arl[0];
    assign m_axi_w0_arsize = 3'd4;
    assign m_axi_w0_arburst = 2'b01;
    assign m_axi_w0_arvalid = kp_arv[0];
    assign kp_arr[0] = m_axi_w0_arready;
    assign kp_rd[0] = m_axi_w0_rdata;
    assign kp_rr[0] = m_axi_w0_rresp;
    assign kp_rl[0] = m_axi_w0_rlast;
    assign kp_rv[0] = m_axi_w0_rvalid;
    assign m_axi_w0_rready = kp_rrdy[0];
    assign m_axi_w1_arid = 1'b0;
    assign m_axi_w1_araddr = kp_ara[1];
    assign m_axi_w1_arlen = kp_arl[1];
    assign m_axi_w1_arsize = 3'd4;
    assign m_axi_w1_arburst = 2'b01;
    assign m_axi_w1_arvalid = kp_arv[1];
    assign kp_arr[1] = m_axi_w1_arready;
    assign kp_rd[1] = m_axi_w1_rdata;
    assign kp_rr[1] = m_axi_w1_rresp;
    assign kp_rl[1] = m_axi_w1_rlast;
    assign kp_rv[1] = m_axi_w1_rvalid;
    assign m_axi_w1_rready = kp_rrdy[1];
    assign m_axi_w2_arid = 1'b0;
    assign m_axi_w2_araddr = kp_ara[2];
    assign m_axi_w2_arlen = kp_arl[2];
    assign m_axi_w2_arsize = 3'd4;
    assign m_axi_w2_arburst = 2'b01;
    assign m_axi_w2_arvalid = kp_arv[2];
    assign kp_arr[2] = m_axi_w2_arready;
    assign kp_rd[2] = m_axi_w2_rdata;
    assign kp_rr[2] = m_axi_w2_rresp;
    assign kp_rl[2] = m_axi_w2_rlast;
    assign kp_rv[2] = m_axi_w2_rvalid;
    assign m_axi_w2_rready = kp_rrdy[2];
    assign m_axi_w3_arid = 1'b0;
    assign m_axi_w3_araddr = kp_ara[3];
    assign m_axi_w3_arlen = kp_arl[3];
    assign m_axi_w3_arsize = 3'd4;
    assign m_axi_w3_arburst = 2'b01;
    assign m_axi_w3_arvalid = kp_arv[3];
    assign kp_arr[3] = m_axi_w3_arready;
    assign kp_rd[3] = m_axi_w3_rdata;
    assign kp_rr[3] = m_axi_w3_rresp;
    assign kp_rl[3] = m_axi_w3_rlast;
    assign kp_rv[3] = m_axi_w3_rvalid;
    assign m_axi_w3_rready = kp_rrdy[3];
    assign m_axi_arid = 2'd0;
    assign m_axi_awid = 2'd0;
    assign m_axi_arsize = 3'd4;
    assign m_axi_arburst = 2'b01;
    assign m_axi_awsize = 3'd4;
    assign m_axi_awburst = 2'b01;

    always_ff @(posedge clk) begin
        if (!rst_n || go) begin
            rd_beats <= '0;
            wr_beats <= '0;
        end else begin
            rd_beats <= rd_beats + 32'(m_axi_rvalid && m_axi_rready) + 32'(kv_rbeats);
            if (m_axi_wvalid && m_axi_wready) wr_beats <= wr_beats + 32'd1;
        end
    end
    wire unused = &{1'b0, m_axi_rid, m_axi_bid, m_axi_w0_rid, m_axi_w1_rid, m_axi_w2_rid, m_axi_w3_rid};
endmodule
