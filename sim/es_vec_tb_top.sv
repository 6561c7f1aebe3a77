// Bench top of the vector unit (sim/tb_es_vec.py): es_vec with its own es_axi_rd and es_axi_wr, as the
// shell will instantiate them (docs/units.md), on one AXI4 master port (ID 0) for cocotbext-axi's
// AXI RAM. `abort_req` (the shell's abort) reaches the unit and both masters, as the shell's fault handling drives it.
module es_vec_tb_top #(
    parameter int Q = 16,
    parameter int MAXTOK = 4,
    parameter int G = 5,
    parameter int VMAX = 1024,
    parameter int VL = 1
) (
    input  logic         clk,
    input  logic         rst_n,
    input  logic         abort_req,
    input  logic         go,
    input  logic [255:0] instr,
    input  logic [39:0]  prog_base,
    input  logic [31:0]  prog_size,
    input  logic [31:0]  n_regions,
    input  logic [31:0]  n_buffers,
    input  logic [39:0]  wgt_base,
    input  logic [31:0]  wgt_size,
    input  logic [39:0]  act_base,
    input  logic [31:0]  act_size,
    input  logic [15:0]  ntok,
    input  logic [31:0]  pos0,
    output logic         busy,
    output logic         done,
    output logic [7:0]   err_code,
    output logic [31:0]  err_info,
    output logic         m_axi_arid,
    output logic [39:0]  m_axi_araddr,
    output logic [7:0]   m_axi_arlen,
    output logic [2:0]   m_axi_arsize,
    output logic [1:0]   m_axi_arburst,
    output logic         m_axi_arvalid,
    input  logic         m_axi_arready,
    input  logic         m_axi_rid,
    input  logic [127:0] m_axi_rdata,
    input  logic [1:0]   m_axi_rresp,
    input  logic         m_axi_rlast,
    input  logic         m_axi_rvalid,
    output logic         m_axi_rready,
    output logic         m_axi_awid,
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
    input  logic         m_axi_bid,
    input  logic [1:0]   m_axi_bresp,
    input  logic         m_axi_bvalid,
    output logic         m_axi_bready
);
    logic         rc_valid, rc_ready, r_valid, r_ready, r_busy, r_err;
    logic [39:0]  rc_addr;
    logic [31:0]  rc_beats;
    logic [127:0] r_data;
    logic [1:0]   r_resp;
    logic         wc_valid, wc_ready, w_valid, w_ready, w_busy, w_err;
    logic [39:0]  wc_addr;
    logic [31:0]  wc_beats;
    logic [127:0] w_data;
    logic [1:0]   w_resp;

    es_vec #(.Q(Q), .MAXTOK(MAXTOK), .G(G), .VMAX(VMAX), .VL(VL)) u_vec (
        .clk, .rst_n, .abort(abort_req), .go, .instr, .prog_base, .prog_size, .n_regions, .n_buffers, .wgt_base, .wgt_size,
        .act_base, .act_size, .kv_base(40'd0), .kv_size(32'd0), .ntok, .pos0, .busy, .done, .err_code, .err_info,
        .rd_cmd_valid(rc_valid), .rd_cmd_ready(rc_ready), .rd_cmd_addr(rc_addr), .rd_cmd_beats(rc_beats),
        .rd_valid(r_valid), .rd_ready(r_ready), .rd_data(r_data), .rd_busy(r_busy), .rd_err(r_err), .rd_err_resp(r_resp),
        .wr_cmd_valid(wc_valid), .wr_cmd_ready(wc_ready), .wr_cmd_addr(wc_addr), .wr_cmd_beats(wc_beats),
        .wr_valid(w_valid), .wr_ready(w_ready), .wr_data(w_data), .wr_busy(w_busy), .wr_err(w_err), .wr_err_resp(w_resp)
    );

    es_axi_rd #(.BURST(16), .OUTST(8), .FIFO(128)) u_rd (
        .clk, .rst_n, .abort(abort_req),
        .cmd_valid(rc_valid), .cmd_ready(rc_ready), .cmd_addr(rc_addr), .cmd_beats(rc_beats),
        .ar_valid(m_axi_arvalid), .ar_ready(m_axi_arready), .ar_addr(m_axi_araddr), .ar_len(m_axi_arlen),
        .r_valid(m_axi_rvalid), .r_ready(m_axi_rready), .r_data(m_axi_rdata), .r_resp(m_axi_rresp), .r_last(m_axi_rlast),
        .out_valid(r_valid), .out_ready(r_ready), .out_data(r_data),
        .busy(r_busy), .err(r_err), .err_resp(r_resp)
    );
    es_axi_wr #(.BURST(16), .FIFO(32)) u_wr (
        .clk, .rst_n, .abort(abort_req),
        .cmd_valid(wc_valid), .cmd_ready(wc_ready), .cmd_addr(wc_addr), .cmd_beats(wc_beats),
        .in_valid(w_valid), .in_ready(w_ready), .in_data(w_data),
        .aw_valid(m_axi_awvalid), .aw_ready(m_axi_awready), .aw_addr(m_axi_awaddr), .aw_len(m_axi_awlen),
        .w_valid(m_axi_wvalid), .w_ready(m_axi_wready), .w_data(m_axi_wdata), .w_strb(m_axi_wstrb),
        .w_last(m_axi_wlast), .b_valid(m_axi_bvalid), .b_ready(m_axi_bready), .b_resp(m_axi_bresp),
        .busy(w_busy), .err(w_err), .err_resp(w_resp)
    );
    assign m_axi_arid = 1'b0;
    assign m_axi_awid = 1'b0;
    assign m_axi_arsize = 3'd4;
    assign m_axi_awsize = 3'd4;
    assign m_axi_arburst = 2'b01;
    assign m_axi_awburst = 2'b01;

    wire unused = &{1'b0, m_axi_rid, m_axi_bid};
endmodule
