// Bench-only wrapper: the attention unit (es_attn) with its own read and write masters
// (es_axi_rd, es_axi_wr, as the shell gives each unit) on one AXI4 master port, so cocotbext-axi's
// AXI RAM (sim/sim_server.py's DdrModel) is the DDR. The dispatch signals are driven by the bench.
module es_attn_bench #(
    parameter int Q = 16,
    parameter int MAXTOK = 4,
    parameter int DMAX = 256,
    parameter int SMAX = 4096,
    parameter int NQ = 4
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
    output logic         m_axi_bready
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

    es_attn #(.Q(Q), .MAXTOK(MAXTOK), .DMAX(DMAX), .SMAX(SMAX), .NQ(NQ)) u_attn (
        .clk, .rst_n, .abort(stop), .go, .instr, .prog_base(40'd0), .prog_size(32'd0), .n_regions(32'd0), .n_buffers,
        .wgt_base(40'd0), .wgt_size(32'd0), .act_base, .act_size, .kv_base, .kv_size, .ntok, .pos0,
        .busy, .done, .err_code, .err_info,
        .rd_cmd_valid(rc_valid), .rd_cmd_ready(rc_ready), .rd_cmd_addr(rc_addr), .rd_cmd_beats(rc_beats),
        .rd_valid, .rd_ready, .rd_data, .rd_busy, .rd_err, .rd_err_resp,
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
            if (m_axi_rvalid && m_axi_rready) rd_beats <= rd_beats + 32'd1;
            if (m_axi_wvalid && m_axi_wready) wr_beats <= wr_beats + 32'd1;
        end
    end
    wire unused = &{1'b0, m_axi_rid, m_axi_bid};
endmodule
