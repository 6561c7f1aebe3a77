// edgestream accelerator shell: AXI4-Lite registers (es_axil_csr), the program.bin sequencer (es_seq),
// four AXI4 read masters (program/buffer map, activations, weights, dequantization scales beta:
// es_axi_rd) sharing one AXI4 master port by ID (ARID 0/1/2/3; R is routed by RID and never
// back-pressured), one AXI4 write master for results (es_axi_wr), the activation unpacker, the TLMM
// engine (tlmm_engine) and the dequantize stage (es_dequant: float32 results). It runs the linear
// layers of program.bin (LOAD_ACT, BUILD_TABLE, TLMM + DEQUANT) and stops at the host's instructions.
// Engine geometry G, T, Q (defaults: es_regs_pkg): one weight beat of Q*T codes fits one bus beat
// (Q*T*CB <= 128) and Q*32 is a multiple of 128; a result / beta unit of Q float32 is R = Q*32/128
// bus beats (R > 1: a gearbox in front of es_dequant's beta port). es_dequant has DQL = min(Q, 4)
// lanes: a unit leaves it as Q/DQL beats of DQL floats, one bus beat each at DQL = 4, the rate the
// write port takes them anyway (a serializer behind it only when DQL*32 > 128).
// Weight ports WP (es_regs_pkg::ES_WPORTS): WP = 1, the weights are the third read master on the one
// AXI4 port (ARID 2); WP = 2 or 4, the weights stream through WP read-only AXI4 ports m_axi_w0..w{WP-1}
// (one ID, 1-bit, always 0), port p reading stripe p of each weight region (docs/registers.md, "Weight
// ports"); the engine takes one beat of WP x 128 bits of codes (Q*T*CB = WP*128) when every port has
// one. The unused weight ports of a build (all four when WP = 1) are tied off: ARVALID 0, RREADY 1.
// Program execution, memory layouts and registers: docs/registers.md. irq = DONE, HOST or ERROR.
module edgestream_accel #(
    parameter logic [63:0] CONFIG_ID = es_regs_pkg::ES_CONFIG_ID,
    parameter int G = es_regs_pkg::ES_G,
    parameter int T = es_regs_pkg::ES_T,
    parameter int Q = es_regs_pkg::ES_Q,
    parameter int MAXK = es_regs_pkg::ES_MAXK,
    parameter int MAXTOK = es_regs_pkg::ES_MAXTOK,
    parameter int BURST = es_regs_pkg::ES_BURST,
    parameter int OUTST = es_regs_pkg::ES_OUTSTANDING,
    parameter int WFIFO = es_regs_pkg::ES_WFIFO,
    parameter int WP = es_regs_pkg::ES_WPORTS,
    parameter int DQL = (Q < 4) ? Q : 4  // es_dequant lanes: divides Q, DQL*32 a multiple of 128
) (
    input  logic         clk,
    input  logic         rst_n,
    // AXI4-Lite control
    input  logic [11:0]  s_axil_awaddr,
    input  logic         s_axil_awvalid,
    output logic         s_axil_awready,
    input  logic [31:0]  s_axil_wdata,
    input  logic [3:0]   s_axil_wstrb,
    input  logic         s_axil_wvalid,
    output logic         s_axil_wready,
    output logic [1:0]   s_axil_bresp,
    output logic         s_axil_bvalid,
    input  logic         s_axil_bready,
    input  logic [11:0]  s_axil_araddr,
    input  logic         s_axil_arvalid,
    output logic         s_axil_arready,
    output logic [31:0]  s_axil_rdata,
    output logic [1:0]   s_axil_rresp,
    output logic         s_axil_rvalid,
    input  logic         s_axil_rready,
    // AXI4 master (DDR)
    output logic [1:0]   m_axi_arid,
    output logic [39:0]  m_axi_araddr,
    output logic [7:0]   m_axi_arlen,
    output logic [2:0]   m_axi_arsize,
    output logic [1:0]   m_axi_arburst,
    output logic [3:0]   m_axi_arcache,
    output logic [2:0]   m_axi_arprot,
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
    output logic [3:0]   m_axi_awcache,
    output logic [2:0]   m_axi_awprot,
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
    // weight read port 0 (WP > 0)
    output logic [0:0]   m_axi_w0_arid,
    output logic [39:0]  m_axi_w0_araddr,
    output logic [7:0]   m_axi_w0_arlen,
    output logic [2:0]   m_axi_w0_arsize,
    output logic [1:0]   m_axi_w0_arburst,
    output logic [3:0]   m_axi_w0_arcache,
    output logic [2:0]   m_axi_w0_arprot,
    output logic         m_axi_w0_arvalid,
    input  logic         m_axi_w0_arready,
    input  logic [0:0]   m_axi_w0_rid,
    input  logic [127:0] m_axi_w0_rdata,
    input  logic [1:0]   m_axi_w0_rresp,
    input  logic         m_axi_w0_rlast,
    input  logic         m_axi_w0_rvalid,
    output logic         m_axi_w0_rready,
    // weight read port 1 (WP > 1)
    output logic [0:0]   m_axi_w1_arid,
    output logic [39:0]  m_axi_w1_araddr,
    output logic [7:0]   m_axi_w1_arlen,
    output logic [2:0]   m_axi_w1_arsize,
    output logic [1:0]   m_axi_w1_arburst,
    output logic [3:0]   m_axi_w1_arcache,
    output logic [2:0]   m_axi_w1_arprot,
    output logic         m_axi_w1_arvalid,
    input  logic         m_axi_w1_arready,
    input  logic [0:0]   m_axi_w1_rid,
    input  logic [127:0] m_axi_w1_rdata,
    input  logic [1:0]   m_axi_w1_rresp,
    input  logic         m_axi_w1_rlast,
    input  logic         m_axi_w1_rvalid,
    output logic         m_axi_w1_rready,
    // weight read port 2 (WP > 2)
    output logic [0:0]   m_axi_w2_arid,
    output logic [39:0]  m_axi_w2_araddr,
    output logic [7:0]   m_axi_w2_arlen,
    output logic [2:0]   m_axi_w2_arsize,
    output logic [1:0]   m_axi_w2_arburst,
    output logic [3:0]   m_axi_w2_arcache,
    output logic [2:0]   m_axi_w2_arprot,
    output logic         m_axi_w2_arvalid,
    input  logic         m_axi_w2_arready,
    input  logic [0:0]   m_axi_w2_rid,
    input  logic [127:0] m_axi_w2_rdata,
    input  logic [1:0]   m_axi_w2_rresp,
    input  logic         m_axi_w2_rlast,
    input  logic         m_axi_w2_rvalid,
    output logic         m_axi_w2_rready,
    // weight read port 3 (WP > 3)
    output logic [0:0]   m_axi_w3_arid,
    output logic [39:0]  m_axi_w3_araddr,
    output logic [7:0]   m_axi_w3_arlen,
    output logic [2:0]   m_axi_w3_arsize,
    output logic [1:0]   m_axi_w3_arburst,
    output logic [3:0]   m_axi_w3_arcache,
    output logic [2:0]   m_axi_w3_arprot,
    output logic         m_axi_w3_arvalid,
    input  logic         m_axi_w3_arready,
    input  logic [0:0]   m_axi_w3_rid,
    input  logic [127:0] m_axi_w3_rdata,
    input  logic [1:0]   m_axi_w3_rresp,
    input  logic         m_axi_w3_rlast,
    input  logic         m_axi_w3_rvalid,
    output logic         m_axi_w3_rready,
    output logic         irq
);
    localparam int DW = 128;
    localparam int CB = $clog2(3 ** G);
    localparam int R = Q * 32 / DW;      // bus beats per result / beta unit (Q float32)
    localparam int RD = DQL * 32 / DW;   // bus beats per es_dequant output beat (DQL float32)
    localparam int WB = Q * T * CB;      // bits of one engine weight beat
    localparam int WPFIFO = WFIFO / WP;  // beats of each weight port's FIFO (wbuf_kib is all of them)

    // ---------------- registers
    logic        start, soft_reset;
    logic [39:0] prog_base, wgt_base, act_base, kv_base;
    logic [31:0] prog_size, pc, ntok, wgt_size, act_size, kv_size;
    logic        st_busy, st_done, st_host, st_error, st_resetting;
    logic [31:0] err_code, err_info, stop_pc;
    logic [63:0] cycles;
    logic [31:0] rd_beats, wr_beats, stall_wgt, stall_act, stall_res, seq_cycles, wgt_beats, instr_count;
    logic [2:0]  retire;

    es_axil_csr #(.CONFIG_ID(CONFIG_ID)) u_csr (
        .clk, .rst_n,
        .s_axil_awaddr, .s_axil_awvalid, .s_axil_awready, .s_axil_wdata, .s_axil_wstrb, .s_axil_wvalid,
        .s_axil_wready, .s_axil_bresp, .s_axil_bvalid, .s_axil_bready, .s_axil_araddr, .s_axil_arvalid,
        .s_axil_arready, .s_axil_rdata, .s_axil_rresp, .s_axil_rvalid, .s_axil_rready,
        .start, .soft_reset, .prog_base, .prog_size, .pc, .wgt_base, .wgt_size, .act_base, .act_size,
        .ntok, .kv_base, .kv_size,
        .status({st_host, st_resetting, st_error, st_done, st_busy}), .err_code, .err_info, .cycles,
        .rd_beats, .wr_beats, .stall_wgt, .stall_act, .stall_res, .seq_cycles, .wgt_beats, .instr_count,
        .stop_pc
    );

    // ---------------- read masters
    logic        abort;
    logic [3:0]  ar_v, ar_r, r_v, rd_busy, rd_err;
    logic [39:0] ar_a [4];
    logic [7:0]  ar_l [4];
    logic [1:0]  rd_resp [4];
    logic [3:0]  r_rdy;
    logic        rc_valid [4];
    logic        rc_ready [4];
    logic [39:0] rc_addr [4];
    logic [31:0] rc_beats [4];
    logic        ro_valid [4];
    logic        ro_ready [4];
    logic [DW-1:0] ro_data [4];

    for (genvar i = 0; i < 4; i++) begin : g_rd
      if (i != 2 || WP == 1) begin : g_m
        // program/map reader: up to 16 bursts in flight, so the entries of a TLMM are fetched with
        // back-to-back commands in about one read latency. A reader keeps at most FIFO beats in
        // flight, so its FIFO sets the bandwidth it sustains at a read latency L (FIFO / L beats per
        // cycle): weights and beta (one unit per result unit in decode) get 256 beats, activations
        // (one beat per two engine cycles of ingest) 128.
        es_axi_rd #(.DW(DW), .BURST(BURST), .OUTST(i == 2 ? OUTST : i == 1 ? 8 : 16),
                    .FIFO(i == 2 ? WFIFO : i == 0 ? 2 * BURST : i == 1 ? 8 * BURST : 16 * BURST)) u_rd (
            .clk, .rst_n, .abort,
            .cmd_valid(rc_valid[i]), .cmd_ready(rc_ready[i]), .cmd_addr(rc_addr[i]), .cmd_beats(rc_beats[i]),
            .ar_valid(ar_v[i]), .ar_ready(ar_r[i]), .ar_addr(ar_a[i]), .ar_len(ar_l[i]),
            .r_valid(r_v[i]), .r_ready(r_rdy[i]), .r_data(m_axi_rdata), .r_resp(m_axi_rresp), .r_last(m_axi_rlast),
            .out_valid(ro_valid[i]), .out_ready(ro_ready[i]), .out_data(ro_data[i]),
            .busy(rd_busy[i]), .err(rd_err[i]), .err_resp(rd_resp[i])
        );
      end else begin : g_wp
        // WP > 1: the weights come through the weight ports (below), not this port
        assign ar_v[i] = 1'b0;
        assign ar_a[i] = '0;
        assign ar_l[i] = '0;
        assign r_rdy[i] = 1'b1;
      end
        assign r_v[i] = m_axi_rvalid && m_axi_rid == 2'(i);
    end

    // ---------------- weights: the main port's third master (WP = 1) or WP weight ports
    logic          w_valid, w_ready, w_busy, w_err, w_cmd_v, w_cmd_r;
    logic [1:0]    w_resp;
    logic [WB-1:0] w_data;
    logic [39:0]   w_cmd_a;
    logic [31:0]   w_cmd_n, w_cmd_s;
    logic [3:0]    wp_arv, wp_arr, wp_rv, wp_rrdy, wp_rl;
    logic [39:0]   wp_ara [4];
    logic [7:0]    wp_arl [4];
    logic [127:0]  wp_rd [4];
    logic [1:0]    wp_rr [4];
    logic [2:0]    wp_rbeats;          // R beats received on the weight ports this cycle (RD_BEATS)
    if (WP == 1) begin : g_w1
        assign rc_valid[2] = w_cmd_v;
        assign w_cmd_r = rc_ready[2];
        assign rc_addr[2] = w_cmd_a;
        assign rc_beats[2] = w_cmd_n;
        assign w_valid = ro_valid[2];
        assign ro_ready[2] = w_ready;
        assign w_data = ro_data[2][WB-1:0];
        assign w_busy = rd_busy[2];
        assign w_err = rd_err[2];
        assign w_resp = rd_resp[2];
        for (genvar p = 0; p < 4; p++) begin : g_off
            assign wp_arv[p] = 1'b0;
            assign wp_ara[p] = '0;
            assign wp_arl[p] = '0;
            assign wp_rrdy[p] = 1'b1;
        end
        assign wp_rbeats = '0;
        wire unused_w1 = &{1'b0, w_cmd_s, wp_arr, wp_rv, wp_rl, wp_rd[0], wp_rd[1], wp_rd[2], wp_rd[3],
                          wp_rr[0], wp_rr[1], wp_rr[2], wp_rr[3]};
    end else begin : g_wn
        // one command to all WP readers at once (they are all idle between tiles): port p reads
        // w_cmd_n beats of stripe p at w_cmd_a + p * w_cmd_s; an engine beat is the WP port beats
        // side by side (port p at bits [128p +: 128]), taken when every port has one
        logic [WP-1:0] c_rdy, o_v, b_busy, b_err;
        logic [1:0]    b_resp [WP];
        logic [127:0]  o_d [WP];
        wire all_v = &o_v;
        assign w_cmd_r = &c_rdy;
        assign w_valid = all_v;
        for (genvar p = 0; p < WP; p++) begin : g_p
            es_axi_rd #(.DW(DW), .BURST(BURST), .OUTST(OUTST), .FIFO(WPFIFO)) u_wrd (
                .clk, .rst_n, .abort,
                .cmd_valid(w_cmd_v && w_cmd_r), .cmd_ready(c_rdy[p]),
                .cmd_addr(w_cmd_a + 40'(p) * 40'(w_cmd_s)), .cmd_beats(w_cmd_n),
                .ar_valid(wp_arv[p]), .ar_ready(wp_arr[p]), .ar_addr(wp_ara[p]), .ar_len(wp_arl[p]),
                .r_valid(wp_rv[p]), .r_ready(wp_rrdy[p]), .r_data(wp_rd[p]), .r_resp(wp_rr[p]), .r_last(wp_rl[p]),
                .out_valid(o_v[p]), .out_ready(w_ready && all_v), .out_data(o_d[p]),
                .busy(b_busy[p]), .err(b_err[p]), .err_resp(b_resp[p])
            );
            assign w_data[128*p +: 128] = o_d[p];
        end
        for (genvar p = WP; p < 4; p++) begin : g_off
            assign wp_arv[p] = 1'b0;
            assign wp_ara[p] = '0;
            assign wp_arl[p] = '0;
            assign wp_rrdy[p] = 1'b1;
            wire unused_p = &{1'b0, wp_arr[p], wp_rv[p], wp_rl[p], wp_rd[p], wp_rr[p]};
        end
        assign w_busy = |b_busy;
        assign w_err = |b_err;
        always_comb begin
            w_resp = 2'b00;
            for (int p = WP - 1; p >= 0; p--) if (b_err[p]) w_resp = b_resp[p];
        end
        always_comb begin
            wp_rbeats = '0;
            for (int p = 0; p < WP; p++) wp_rbeats = wp_rbeats + 3'(wp_rv[p] && wp_rrdy[p]);
        end
        assign rc_valid[2] = 1'b0;
        assign rc_addr[2] = '0;
        assign rc_beats[2] = '0;
        assign ro_ready[2] = 1'b1;
        assign rd_busy[2] = 1'b0;
        assign rd_err[2] = 1'b0;
        assign rd_resp[2] = 2'b00;
        assign ro_valid[2] = 1'b0;
        assign ro_data[2] = '0;
        assign rc_ready[2] = 1'b0;
        wire unused_wn = &{1'b0, ar_r[2], r_v[2], rd_busy[2], rd_err[2], rd_resp[2]};
    end

    // AR arbiter: fixed priority program > activations > beta > weights, held until accepted. The
    // weight reader prefetches 256 beats the moment a tile starts; beta (a unit per row batch, a small
    // fraction of the weights) goes first so the dequantize stage never waits behind that prefetch.
    logic [1:0] sel, gsel;
    logic       glock;
    always_comb begin
        if (glock) sel = gsel;
        else if (ar_v[0]) sel = 2'd0;
        else if (ar_v[1]) sel = 2'd1;
        else if (ar_v[3]) sel = 2'd3;
        else sel = 2'd2;
    end
    assign m_axi_arvalid = ar_v[sel];
    assign m_axi_arid = sel;
    assign m_axi_araddr = ar_a[sel];
    assign m_axi_arlen = ar_l[sel];
    assign m_axi_arsize = 3'($clog2(DW / 8));
    assign m_axi_arburst = 2'b01;
    assign m_axi_arcache = 4'b0011;
    assign m_axi_arprot = 3'b000;
    for (genvar i = 0; i < 4; i++) begin : g_arr
        assign ar_r[i] = m_axi_arready && sel == 2'(i);
    end
    // every read master reserves FIFO room before it asks: R is always accepted
    assign m_axi_rready = 1'b1;
    always_ff @(posedge clk) begin
        if (!rst_n) glock <= 1'b0;
        else if (m_axi_arvalid && !m_axi_arready) begin
            glock <= 1'b1;
            gsel <= sel;
        end else begin
            glock <= 1'b0;
        end
    end

    // weight port pins (an unused port: ARVALID 0, RREADY 1)
    assign m_axi_w0_arid = 1'b0;
    assign m_axi_w0_araddr = wp_ara[0];
    assign m_axi_w0_arlen = wp_arl[0];
    assign m_axi_w0_arsize = 3'($clog2(DW / 8));
    assign m_axi_w0_arburst = 2'b01;
    assign m_axi_w0_arcache = 4'b0011;
    assign m_axi_w0_arprot = 3'b000;
    assign m_axi_w0_arvalid = wp_arv[0];
    assign wp_arr[0] = m_axi_w0_arready;
    assign wp_rv[0] = m_axi_w0_rvalid;
    assign wp_rd[0] = m_axi_w0_rdata;
    assign wp_rr[0] = m_axi_w0_rresp;
    assign wp_rl[0] = m_axi_w0_rlast;
    assign m_axi_w0_rready = wp_rrdy[0];
    assign m_axi_w1_arid = 1'b0;
    assign m_axi_w1_araddr = wp_ara[1];
    assign m_axi_w1_arlen = wp_arl[1];
    assign m_axi_w1_arsize = 3'($clog2(DW / 8));
    assign m_axi_w1_arburst = 2'b01;
    assign m_axi_w1_arcache = 4'b0011;
    assign m_axi_w1_arprot = 3'b000;
    assign m_axi_w1_arvalid = wp_arv[1];
    assign wp_arr[1] = m_axi_w1_arready;
    assign wp_rv[1] = m_axi_w1_rvalid;
    assign wp_rd[1] = m_axi_w1_rdata;
    assign wp_rr[1] = m_axi_w1_rresp;
    assign wp_rl[1] = m_axi_w1_rlast;
    assign m_axi_w1_rready = wp_rrdy[1];
    assign m_axi_w2_arid = 1'b0;
    assign m_axi_w2_araddr = wp_ara[2];
    assign m_axi_w2_arlen = wp_arl[2];
    assign m_axi_w2_arsize = 3'($clog2(DW / 8));
    assign m_axi_w2_arburst = 2'b01;
    assign m_axi_w2_arcache = 4'b0011;
    assign m_axi_w2_arprot = 3'b000;
    assign m_axi_w2_arvalid = wp_arv[2];
    assign wp_arr[2] = m_axi_w2_arready;
    assign wp_rv[2] = m_axi_w2_rvalid;
    assign wp_rd[2] = m_axi_w2_rdata;
    assign wp_rr[2] = m_axi_w2_rresp;
    assign wp_rl[2] = m_axi_w2_rlast;
    assign m_axi_w2_rready = wp_rrdy[2];
    assign m_axi_w3_arid = 1'b0;
    assign m_axi_w3_araddr = wp_ara[3];
    assign m_axi_w3_arlen = wp_arl[3];
    assign m_axi_w3_arsize = 3'($clog2(DW / 8));
    assign m_axi_w3_arburst = 2'b01;
    assign m_axi_w3_arcache = 4'b0011;
    assign m_axi_w3_arprot = 3'b000;
    assign m_axi_w3_arvalid = wp_arv[3];
    assign wp_arr[3] = m_axi_w3_arready;
    assign wp_rv[3] = m_axi_w3_rvalid;
    assign wp_rd[3] = m_axi_w3_rdata;
    assign wp_rr[3] = m_axi_w3_rresp;
    assign wp_rl[3] = m_axi_w3_rlast;
    assign m_axi_w3_rready = wp_rrdy[3];

    // ---------------- engine and streams
    logic         e_cmd_valid, e_cmd_ready, e_busy, e_err, e_reset;
    logic [63:0]  e_cmd_data;
    logic         e_act_valid, e_act_ready;
    logic [G*8-1:0] e_act_data;
    logic         e_res_valid, e_res_ready, e_res_last;
    logic [Q*32-1:0] e_res_data;
    logic [$clog2(MAXTOK)-1:0] e_res_user;
    logic         u_clear;
    logic [15:0]  u_groups;

    // the activation stream's first dq_sbeats beats of a tile are the per-token scales s[t]
    logic [7:0] dq_ntok, dq_sbeats, s_left;
    logic [1:0] s_idx;
    logic       u_in_ready;
    always_ff @(posedge clk) begin
        if (!rst_n || abort) begin
            s_left <= '0;
            s_idx <= '0;
        end else if (u_clear) begin
            s_left <= dq_sbeats;
            s_idx <= '0;
        end else if (s_left != 8'd0 && ro_valid[1]) begin
            s_left <= s_left - 8'd1;
            s_idx <= s_idx + 2'd1;
        end
    end
    assign ro_ready[1] = (s_left != 8'd0) || u_in_ready;

    es_act_unpack #(.DW(DW), .G(G)) u_unpack (
        .clk, .rst_n, .clear(u_clear), .groups(u_groups),
        .in_valid(ro_valid[1] && s_left == 8'd0), .in_ready(u_in_ready), .in_data(ro_data[1]),
        .out_valid(e_act_valid), .out_ready(e_act_ready), .out_data(e_act_data)
    );

    tlmm_engine #(.G(G), .T(T), .Q(Q), .MAXK(MAXK), .MAXTOK(MAXTOK)) u_engine (
        .clk, .rst_n(rst_n && !e_reset),
        .s_cmd_tvalid(e_cmd_valid), .s_cmd_tready(e_cmd_ready), .s_cmd_tdata(e_cmd_data),
        .s_act_tvalid(e_act_valid), .s_act_tready(e_act_ready), .s_act_tdata(e_act_data),
        .s_w_tvalid(w_valid), .s_w_tready(w_ready), .s_w_tdata(w_data),
        .m_res_tvalid(e_res_valid), .m_res_tready(e_res_ready), .m_res_tdata(e_res_data),
        .m_res_tuser(e_res_user), .m_res_tlast(e_res_last),
        .busy(e_busy), .err_code(e_err)
    );

    // ---------------- result writer
    logic        wc_valid, wc_ready, wr_busy, wr_err;
    logic [39:0] wc_addr;
    logic [31:0] wc_beats;
    logic [1:0]  wr_resp;
    logic [7:0]  aw_len;

    // A result or beta unit (one row batch of one token / one row batch) is Q float32 = R bus beats,
    // float q at byte 4q: beat i carries floats 4i..4i+3 (the lowest 128 bits first).
    logic              d_out_valid, d_out_ready, b_valid, b_ready, w_in_valid, w_in_ready;
    logic [Q*32-1:0]   b_data;
    logic [DQL*32-1:0] d_out_data;
    logic [DW-1:0]     w_in_data;
    if (R == 1) begin : g_unit1
        assign b_valid = ro_valid[3];
        assign ro_ready[3] = b_ready;
        assign b_data = ro_data[3][Q*32-1:0];
    end else begin : g_unitR
        localparam int RW = $clog2(R);
        // beta gearbox DW -> Q*32: R beats shift in from the top, so the first ends up lowest
        logic [Q*32-1:0] des_q;
        logic [RW:0]     des_n;             // beats held (R: a whole unit)
        wire des_full = des_n == (RW + 1)'(R);
        wire des_in = ro_valid[3] && ro_ready[3];
        assign ro_ready[3] = !des_full || b_ready;
        assign b_valid = des_full;
        assign b_data = des_q;
        always_ff @(posedge clk) begin
            if (!rst_n || e_reset) des_n <= '0;
            else if (des_in) des_n <= des_full ? (RW + 1)'(1) : des_n + 1'b1;
            else if (des_full && b_ready) des_n <= '0;
            if (des_in) des_q <= {ro_data[3], des_q[Q*32-1:DW]};
        end
    end
    if (RD == 1) begin : g_dq1
        // es_dequant's sub-beats (floats 4j..4j+3 of the unit) are the unit's bus beats, in order
        assign w_in_valid = d_out_valid;
        assign d_out_ready = w_in_ready;
        assign w_in_data = d_out_data;
    end else begin : g_dqR
        localparam int RDW = $clog2(RD);
        // result serializer DQL*32 -> DW: a dequant beat goes out as RD beats, the lowest 128 bits first
        logic [DQL*32-1:0] ser_q;
        logic              ser_v;
        logic [RDW-1:0]    ser_n;           // beats of the held dequant beat already sent
        assign d_out_ready = !ser_v || (w_in_ready && ser_n == RDW'(RD - 1));
        assign w_in_valid = ser_v;
        assign w_in_data = ser_q[DW-1:0];
        always_ff @(posedge clk) begin
            if (!rst_n || e_reset) begin
                ser_v <= 1'b0;
                ser_n <= '0;
            end else if (d_out_ready) begin
                ser_v <= d_out_valid;
                ser_n <= '0;
            end else if (w_in_ready) begin
                ser_n <= ser_n + 1'b1;
            end
            if (d_out_ready) ser_q <= d_out_data;
            else if (w_in_ready) ser_q <= ser_q >> DW;
        end
    end

    es_dequant #(.Q(Q), .DL(DQL), .MAXTOK(MAXTOK)) u_dq (
        .clk, .rst_n(rst_n && !e_reset), .en(1'b1), .ntok(dq_ntok),
        .ld_valid(s_left != 8'd0 && ro_valid[1]), .ld_idx(s_idx), .ld_data(ro_data[1]),
        .in_valid(e_res_valid), .in_ready(e_res_ready), .in_data(e_res_data), .in_tok(e_res_user),
        .b_valid, .b_ready, .b_data,
        .out_valid(d_out_valid), .out_ready(d_out_ready), .out_data(d_out_data)
    );

    es_axi_wr #(.DW(DW), .BURST(BURST), .FIFO(2 * BURST)) u_wr (
        .clk, .rst_n, .abort,
        .cmd_valid(wc_valid), .cmd_ready(wc_ready), .cmd_addr(wc_addr), .cmd_beats(wc_beats),
        .in_valid(w_in_valid), .in_ready(w_in_ready), .in_data(w_in_data),
        .aw_valid(m_axi_awvalid), .aw_ready(m_axi_awready), .aw_addr(m_axi_awaddr), .aw_len(aw_len),
        .w_valid(m_axi_wvalid), .w_ready(m_axi_wready), .w_data(m_axi_wdata), .w_strb(m_axi_wstrb),
        .w_last(m_axi_wlast), .b_valid(m_axi_bvalid), .b_ready(m_axi_bready), .b_resp(m_axi_bresp),
        .busy(wr_busy), .err(wr_err), .err_resp(wr_resp)
    );
    assign m_axi_awlen = aw_len;
    assign m_axi_awid = 2'd0;
    assign m_axi_awsize = 3'($clog2(DW / 8));
    assign m_axi_awburst = 2'b01;
    assign m_axi_awcache = 4'b0011;
    assign m_axi_awprot = 3'b000;

    // ---------------- sequencer
    es_seq #(.CONFIG_ID(CONFIG_ID), .G(G), .T(T), .Q(Q), .MAXK(MAXK), .MAXTOK(MAXTOK), .SPB(DW / 64), .WP(WP)) u_seq (
        .clk, .rst_n, .start, .soft_reset,
        .prog_base, .prog_size, .pc_start(pc), .ntok_in(ntok), .wgt_base, .wgt_size, .act_base, .act_size,
        .p_cmd_valid(rc_valid[0]), .p_cmd_ready(rc_ready[0]), .p_cmd_addr(rc_addr[0]), .p_cmd_beats(rc_beats[0]),
        .p_valid(ro_valid[0]), .p_ready(ro_ready[0]), .p_data(ro_data[0]),
        .p_busy(rd_busy[0]), .p_err(rd_err[0]), .p_err_resp(rd_resp[0]),
        .a_cmd_valid(rc_valid[1]), .a_cmd_ready(rc_ready[1]), .a_cmd_addr(rc_addr[1]), .a_cmd_beats(rc_beats[1]),
        .a_busy(rd_busy[1]), .a_err(rd_err[1]), .a_err_resp(rd_resp[1]),
        .w_cmd_valid(w_cmd_v), .w_cmd_ready(w_cmd_r), .w_cmd_addr(w_cmd_a), .w_cmd_beats(w_cmd_n),
        .w_cmd_stride(w_cmd_s), .w_busy, .w_err, .w_err_resp(w_resp),
        .b_cmd_valid(rc_valid[3]), .b_cmd_ready(rc_ready[3]), .b_cmd_addr(rc_addr[3]), .b_cmd_beats(rc_beats[3]),
        .b_busy(rd_busy[3]), .b_err(rd_err[3]), .b_err_resp(rd_resp[3]), .dq_ntok, .dq_sbeats,
        .r_cmd_valid(wc_valid), .r_cmd_ready(wc_ready), .r_cmd_addr(wc_addr), .r_cmd_beats(wc_beats),
        .r_busy(wr_busy), .r_err(wr_err), .r_err_resp(wr_resp),
        .e_cmd_valid, .e_cmd_ready, .e_cmd_data, .e_busy, .e_err_code(e_err), .e_reset,
        .u_clear, .u_groups, .abort,
        .st_busy, .st_done, .st_host, .st_error, .st_resetting, .err_code, .err_info, .stop_pc, .retire
    );

    // ---------------- counters (cleared by START, counting while busy)
    always_ff @(posedge clk) begin
        if (!rst_n || start) begin
            cycles <= '0;
            rd_beats <= '0;
            wr_beats <= '0;
            stall_wgt <= '0;
            stall_act <= '0;
            stall_res <= '0;
            seq_cycles <= '0;
            wgt_beats <= '0;
            instr_count <= '0;
        end else begin
            if (st_busy) cycles <= cycles + 64'd1;
            rd_beats <= rd_beats + 32'(m_axi_rvalid && m_axi_rready) + 32'(wp_rbeats);
            if (m_axi_wvalid && m_axi_wready) wr_beats <= wr_beats + 32'd1;
            if (w_ready && !w_valid) stall_wgt <= stall_wgt + 32'd1;
            if (e_act_ready && !e_act_valid) stall_act <= stall_act + 32'd1;
            if (e_res_valid && !e_res_ready) stall_res <= stall_res + 32'd1;
            if (st_busy && !e_busy) seq_cycles <= seq_cycles + 32'd1;
            if (w_valid && w_ready) wgt_beats <= wgt_beats + 32'(WP);   // bus beats
            instr_count <= instr_count + 32'(retire);
        end
    end

    assign irq = st_done || st_host || st_error;

    wire unused = &{1'b0, kv_base, kv_size, m_axi_bid, e_res_last, r_rdy, m_axi_w0_rid, m_axi_w1_rid, m_axi_w2_rid,
                    m_axi_w3_rid};

endmodule
