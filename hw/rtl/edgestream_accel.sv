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
// Units (UNITS, HW_UNITS; docs/units.md): bit 0 the vector unit es_vec (EMBED, NORM_QUANT, ROPE,
// ACT_MUL ReLU^2, ADD) with the row unit es_row (LAST_ROW) sharing its read master (ARID 4) and write
// master (AWID 1), bit 1 the attention unit es_attn (ARID 5, AWID 2) over the KV region, bit 2 the
// argmax of OUTPUT (es_row). es_seq dispatches to them and waits; one runs at a time.
// KVP (attention KV ports): 1, the attention unit's key and value streams on its read master (ARID 5);
// KVP = WP (2 or 4), they stream through the weight ports, which the engine leaves idle while a unit
// runs: the weight readers' command and out_ready are the attention unit's while it is busy (a mux in
// front of them, the engine sees no weight beat then), its writes stay on AWID 2 (docs/units.md "KV
// cache in DDR": the striped layout of KVP ports).
// Writes: three es_axi_wr (results AWID 0, vector/row 1, attention 2) behind one AW/W multiplexer that
// gives W to the master whose AW went out until its last beat (W carries no ID); B is routed by BID.
// Program execution, memory layouts and registers: docs/registers.md. irq = IRQ_EN and (DONE, HOST or
// ERROR).
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
    parameter int DQL = (Q < 4) ? Q : 4, // es_dequant lanes: divides Q, DQL*32 a multiple of 128
    parameter logic [2:0] UNITS = 3'b111,  // HW_UNITS: bit 0 vector (+ row), bit 1 attention, bit 2 argmax;
                                         // 0: the linear-only shell (the host runs the rest)
    parameter int VMAX = 8192,           // es_vec: longest row (floats, power of two)
    parameter int DMAX = 256,            // es_attn: longest head row (multiple of 16)
    parameter int SMAX = 4096,           // es_attn: longest context (power of two)
    parameter int NQ = 4,                // es_attn: queries per key/value stream
    parameter int KVP = es_regs_pkg::ES_KVP, // es_attn: KV ports (1, or WP when WP > 1: the weight ports;
                                         // the package's rule, edgestream/regmap.py kv_ports)
    parameter int KROWS = es_regs_pkg::ES_KROWS, // rows of a K-tiled linear accumulated on chip (0: the host
                                         // runs K-tiled linears); HW_UNITS bit 3
    parameter int INT_DENSE = es_regs_pkg::ES_INT_DENSE,  // the engine runs int-dense regions (a multiplier
                                         // per lane: the LM head at 8 bits per weight)
    parameter int VL = es_regs_pkg::ES_VEC_LANES  // es_vec: elements per cycle (1 or 4)
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
    output logic [2:0]   m_axi_arid,
    output logic [39:0]  m_axi_araddr,
    output logic [7:0]   m_axi_arlen,
    output logic [2:0]   m_axi_arsize,
    output logic [1:0]   m_axi_arburst,
    output logic [3:0]   m_axi_arcache,
    output logic [2:0]   m_axi_arprot,
    output logic         m_axi_arvalid,
    input  logic         m_axi_arready,
    input  logic [2:0]   m_axi_rid,
    input  logic [127:0] m_axi_rdata,
    input  logic [1:0]   m_axi_rresp,
    input  logic         m_axi_rlast,
    input  logic         m_axi_rvalid,
    output logic         m_axi_rready,
    output logic [2:0]   m_axi_awid,
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
    input  logic [2:0]   m_axi_bid,
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
    logic [31:0] pos, argmax, vec_cycles, attn_cycles;
    logic        irq_en;
    // [7:4] KVP: the KV region's layout (docs/units.md), which the host sizes and shifts
    localparam logic [31:0] HW_UNITS = {24'd0, 4'(KVP), KROWS > 0, UNITS[2] && UNITS[0], UNITS[1], UNITS[0]};
    localparam logic [31:0] HW_VEC = {16'(UNITS[1] ? DMAX : 0), 16'(UNITS[0] ? VMAX : 0)};
    localparam logic [31:0] HW_SMAX = UNITS[1] ? 32'(SMAX) : 32'd0;

    es_axil_csr #(.CONFIG_ID(CONFIG_ID)) u_csr (
        .clk, .rst_n,
        .s_axil_awaddr, .s_axil_awvalid, .s_axil_awready, .s_axil_wdata, .s_axil_wstrb, .s_axil_wvalid,
        .s_axil_wready, .s_axil_bresp, .s_axil_bvalid, .s_axil_bready, .s_axil_araddr, .s_axil_arvalid,
        .s_axil_arready, .s_axil_rdata, .s_axil_rresp, .s_axil_rvalid, .s_axil_rready,
        .start, .soft_reset, .prog_base, .prog_size, .pc, .wgt_base, .wgt_size, .act_base, .act_size,
        .ntok, .kv_base, .kv_size, .pos, .irq_en, .hw_units(HW_UNITS), .hw_vec(HW_VEC), .hw_smax(HW_SMAX),
        .status({st_host, st_resetting, st_error, st_done, st_busy}), .err_code, .err_info, .cycles,
        .rd_beats, .wr_beats, .stall_wgt, .stall_act, .stall_res, .seq_cycles, .wgt_beats, .instr_count,
        .stop_pc, .argmax, .vec_cycles, .attn_cycles
    );

    // ---------------- read masters
    logic        abort;
    // ARID 0..3: the sequencer's masters; 4: vector/row unit; 5: attention unit
    logic [5:0]  ar_v, ar_r, r_v;
    logic [3:0]  rd_busy, rd_err;
    logic [39:0] ar_a [6];
    logic [7:0]  ar_l [6];
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
    end
    for (genvar i = 0; i < 6; i++) begin : g_rv
        assign r_v[i] = m_axi_rvalid && m_axi_rid == 3'(i);
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
    // the attention unit's KV stream (KVP > 1): it owns the weight readers while at_sel
    logic          at_sel, at_kc_v, at_kc_r, at_kv_r, w_all_v;
    logic [511:0]  w_all_d;            // the weight readers' beats side by side (port p at [128p +: 128])
    logic [39:0]   at_kc_a;
    logic [31:0]   at_kc_n, at_kc_s;
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
        assign at_kc_r = 1'b0;
        assign w_all_v = 1'b0;
        assign w_all_d = '0;
        wire unused_w1 = &{1'b0, at_sel, at_kc_v, at_kc_a, at_kc_n, at_kc_s, at_kv_r, w_cmd_s, wp_arr, wp_rv, wp_rl, wp_rd[0], wp_rd[1], wp_rd[2], wp_rd[3],
                          wp_rr[0], wp_rr[1], wp_rr[2], wp_rr[3]};
    end else begin : g_wn
        // one command to all WP readers at once (they are all idle between tiles): port p reads
        // w_cmd_n beats of stripe p at w_cmd_a + p * w_cmd_s; an engine beat is the WP port beats
        // side by side (port p at bits [128p +: 128]), taken when every port has one
        logic [WP-1:0] c_rdy, o_v, b_busy, b_err;
        logic [1:0]    b_resp [WP];
        logic [127:0]  o_d [WP];
        wire all_v = &o_v;
        // KVP > 1: the attention unit's command and ready while it runs (the sequencer issues none then,
        // and its streams are idle before it dispatches a unit)
        wire        q_sel = KVP > 1 && at_sel;
        wire        q_v = q_sel ? at_kc_v : w_cmd_v;
        wire [39:0] q_a = q_sel ? at_kc_a : w_cmd_a;
        wire [31:0] q_n = q_sel ? at_kc_n : w_cmd_n;
        wire [31:0] q_s = q_sel ? at_kc_s : w_cmd_s;
        wire        q_rdy = q_sel ? at_kv_r : w_ready;
        assign w_cmd_r = &c_rdy && !q_sel;
        assign at_kc_r = &c_rdy && q_sel;
        assign w_valid = all_v && !q_sel;
        assign w_all_v = all_v;
        always_comb begin
            w_all_d = '0;
            for (int p = 0; p < WP; p++) w_all_d[128*p +: 128] = o_d[p];
        end
        for (genvar p = 0; p < WP; p++) begin : g_p
            es_axi_rd #(.DW(DW), .BURST(BURST), .OUTST(OUTST), .FIFO(WPFIFO)) u_wrd (
                .clk, .rst_n, .abort,
                .cmd_valid(q_v && &c_rdy), .cmd_ready(c_rdy[p]),
                .cmd_addr(q_a + 40'(p) * 40'(q_s)), .cmd_beats(q_n),
                .ar_valid(wp_arv[p]), .ar_ready(wp_arr[p]), .ar_addr(wp_ara[p]), .ar_len(wp_arl[p]),
                .r_valid(wp_rv[p]), .r_ready(wp_rrdy[p]), .r_data(wp_rd[p]), .r_resp(wp_rr[p]), .r_last(wp_rl[p]),
                .out_valid(o_v[p]), .out_ready(q_rdy && all_v), .out_data(o_d[p]),
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
    // The units run while the sequencer's streams are idle, so where they sit in the order matters little.
    logic [2:0] sel, gsel;
    logic       glock;
    always_comb begin
        if (glock) sel = gsel;
        else if (ar_v[0]) sel = 3'd0;
        else if (ar_v[1]) sel = 3'd1;
        else if (ar_v[3]) sel = 3'd3;
        else if (ar_v[4]) sel = 3'd4;
        else if (ar_v[5]) sel = 3'd5;
        else sel = 3'd2;
    end
    assign m_axi_arvalid = ar_v[sel];
    assign m_axi_arid = sel;
    assign m_axi_araddr = ar_a[sel];
    assign m_axi_arlen = ar_l[sel];
    assign m_axi_arsize = 3'($clog2(DW / 8));
    assign m_axi_arburst = 2'b01;
    assign m_axi_arcache = 4'b0011;
    assign m_axi_arprot = 3'b000;
    for (genvar i = 0; i < 6; i++) begin : g_arr
        assign ar_r[i] = m_axi_arready && sel == 3'(i);
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

    tlmm_engine #(.G(G), .T(T), .Q(Q), .MAXK(MAXK), .MAXTOK(MAXTOK), .KROWS(KROWS), .INT_DENSE(INT_DENSE)) u_engine (
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

    // write masters: 0 results, 1 vector/row unit, 2 attention unit
    logic [2:0]   aw_v, aw_r, w_v, w_r, w_l, b_v, b_rdy;
    logic [39:0]  aw_a [3];
    logic [7:0]   aw_l [3];
    logic [DW-1:0] w_d [3];
    logic [DW/8-1:0] w_s [3];
    es_axi_wr #(.DW(DW), .BURST(BURST), .FIFO(2 * BURST)) u_wr (
        .clk, .rst_n, .abort,
        .cmd_valid(wc_valid), .cmd_ready(wc_ready), .cmd_addr(wc_addr), .cmd_beats(wc_beats),
        .in_valid(w_in_valid), .in_ready(w_in_ready), .in_data(w_in_data),
        .aw_valid(aw_v[0]), .aw_ready(aw_r[0]), .aw_addr(aw_a[0]), .aw_len(aw_l[0]),
        .w_valid(w_v[0]), .w_ready(w_r[0]), .w_data(w_d[0]), .w_strb(w_s[0]),
        .w_last(w_l[0]), .b_valid(b_v[0]), .b_ready(b_rdy[0]), .b_resp(m_axi_bresp),
        .busy(wr_busy), .err(wr_err), .err_resp(wr_resp)
    );

    // AW/W multiplexer: an AW is granted (fixed priority, held while not accepted, as AXI requires),
    // then W belongs to that master until its last beat; the next AW waits for it (es_axi_wr sends a
    // burst's AW only with all its data buffered, so W never stalls on data).
    logic [1:0] asel, agsel, wown;
    logic       aglock, wphase;
    always_comb begin
        if (aglock) asel = agsel;
        else if (aw_v[0]) asel = 2'd0;
        else if (aw_v[1]) asel = 2'd1;
        else asel = 2'd2;
    end
    assign m_axi_awvalid = !wphase && aw_v[asel];
    assign m_axi_awaddr = aw_a[asel];
    assign m_axi_awlen = aw_l[asel];
    assign m_axi_awid = {1'b0, asel};   // 3 bits as ARID (one ID width for the interface)
    for (genvar i = 0; i < 3; i++) begin : g_aw
        assign aw_r[i] = !wphase && m_axi_awready && asel == 2'(i);
        assign w_r[i] = wphase && m_axi_wready && wown == 2'(i);
        assign b_v[i] = m_axi_bvalid && m_axi_bid == 3'(i);
    end
    assign m_axi_wvalid = wphase && w_v[wown];
    assign m_axi_wdata = w_d[wown];
    assign m_axi_wstrb = w_s[wown];
    assign m_axi_wlast = w_l[wown];
    assign m_axi_bready = 1'b1;   // every es_axi_wr takes B at once
    always_ff @(posedge clk) begin
        if (!rst_n) begin
            aglock <= 1'b0;
            wphase <= 1'b0;
        end else begin
            aglock <= m_axi_awvalid && !m_axi_awready;
            if (m_axi_awvalid && !m_axi_awready) agsel <= asel;
            if (m_axi_awvalid && m_axi_awready) begin
                wphase <= 1'b1;
                wown <= asel;
            end else if (m_axi_wvalid && m_axi_wready && m_axi_wlast) begin
                wphase <= 1'b0;
            end
        end
    end
    assign m_axi_awsize = 3'($clog2(DW / 8));
    assign m_axi_awburst = 2'b01;
    assign m_axi_awcache = 4'b0011;
    assign m_axi_awprot = 3'b000;

    // ---------------- sequencer
    logic         go_vec, go_attn, go_row, u_done, u_idle;
    logic [255:0] u_instr;
    logic [31:0]  u_nregions, u_nbuffers, u_pos, u_err_info;
    logic [15:0]  u_ntok;
    logic [7:0]   u_err_code;
    es_seq #(.CONFIG_ID(CONFIG_ID), .G(G), .T(T), .Q(Q), .MAXK(MAXK), .MAXTOK(MAXTOK), .SPB(DW / 64), .WP(WP),
             .UNITS(UNITS), .KROWS(KROWS), .INT_DENSE(INT_DENSE)) u_seq (
        .clk, .rst_n, .start, .soft_reset,
        .prog_base, .prog_size, .pc_start(pc), .ntok_in(ntok), .pos_in(pos), .wgt_base, .wgt_size, .act_base,
        .act_size,
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
        .u_clear, .u_groups,
        .go_vec, .go_attn, .go_row, .u_instr, .u_nregions, .u_nbuffers, .u_ntok, .u_pos,
        .u_done, .u_err_code, .u_err_info, .u_idle, .abort,
        .st_busy, .st_done, .st_host, .st_error, .st_resetting, .err_code, .err_info, .stop_pc, .retire
    );

    // ---------------- units
    // Each unit's command/data streams meet its own es_axi_rd / es_axi_wr here (docs/units.md "Memory").
    logic        v_busy, v_done, a_busy, a_done, ro_busy, ro_done, am_valid;
    logic [7:0]  v_code, a_code, ro_code;
    logic [31:0] v_info, a_info, ro_info, am_index;
    logic        ur_busy [2];
    logic [1:0]  rr_u;             // the units' readers take R always (as every es_axi_rd)
    logic        uw_busy [2];
    if (UNITS[0]) begin : g_vec
        // the vector unit and the row unit share one read and one write master (one runs at a time)
        logic         rsel;             // the row unit owns the streams (latched at its dispatch)
        logic         rc_v, rc_r, rd_v, rd_r, rd_e, wc_v, wc_r, wd_v, wd_r, wr_e, wr_b;
        logic [39:0]  rc_a, wc_a;
        logic [31:0]  rc_n, wc_n;
        logic [DW-1:0] rd_d, wd_d;
        logic [1:0]   rd_er, wr_er;
        logic         vrc_v, vrd_r, vwc_v, vwd_v, orc_v, ord_r, owc_v, owd_v;
        logic [39:0]  vrc_a, vwc_a, orc_a, owc_a;
        logic [31:0]  vrc_n, vwc_n, orc_n, owc_n;
        logic [DW-1:0] vwd_d, owd_d;
        always_ff @(posedge clk) begin
            if (!rst_n) rsel <= 1'b0;
            else if (go_row) rsel <= 1'b1;
            else if (go_vec) rsel <= 1'b0;
        end
        assign rc_v = rsel ? orc_v : vrc_v;
        assign rc_a = rsel ? orc_a : vrc_a;
        assign rc_n = rsel ? orc_n : vrc_n;
        assign rd_r = rsel ? ord_r : vrd_r;
        assign wc_v = rsel ? owc_v : vwc_v;
        assign wc_a = rsel ? owc_a : vwc_a;
        assign wc_n = rsel ? owc_n : vwc_n;
        assign wd_v = rsel ? owd_v : vwd_v;
        assign wd_d = rsel ? owd_d : vwd_d;

        es_axi_rd #(.DW(DW), .BURST(BURST), .OUTST(8), .FIFO(8 * BURST)) u_vrd (
            .clk, .rst_n, .abort,
            .cmd_valid(rc_v), .cmd_ready(rc_r), .cmd_addr(rc_a), .cmd_beats(rc_n),
            .ar_valid(ar_v[4]), .ar_ready(ar_r[4]), .ar_addr(ar_a[4]), .ar_len(ar_l[4]),
            .r_valid(r_v[4]), .r_ready(rr_u[0]), .r_data(m_axi_rdata), .r_resp(m_axi_rresp), .r_last(m_axi_rlast),
            .out_valid(rd_v), .out_ready(rd_r), .out_data(rd_d),
            .busy(ur_busy[0]), .err(rd_e), .err_resp(rd_er)
        );
        es_axi_wr #(.DW(DW), .BURST(BURST), .FIFO(2 * BURST)) u_vwr (
            .clk, .rst_n, .abort,
            .cmd_valid(wc_v), .cmd_ready(wc_r), .cmd_addr(wc_a), .cmd_beats(wc_n),
            .in_valid(wd_v), .in_ready(wd_r), .in_data(wd_d),
            .aw_valid(aw_v[1]), .aw_ready(aw_r[1]), .aw_addr(aw_a[1]), .aw_len(aw_l[1]),
            .w_valid(w_v[1]), .w_ready(w_r[1]), .w_data(w_d[1]), .w_strb(w_s[1]),
            .w_last(w_l[1]), .b_valid(b_v[1]), .b_ready(b_rdy[1]), .b_resp(m_axi_bresp),
            .busy(uw_busy[0]), .err(wr_e), .err_resp(wr_er)
        );
        assign wr_b = uw_busy[0];
        es_vec #(.Q(Q), .MAXTOK(MAXTOK), .G(G), .VMAX(VMAX), .VL(VL)) u_vec (
            .clk, .rst_n, .abort, .go(go_vec), .instr(u_instr), .prog_base, .prog_size,
            .n_regions(u_nregions), .n_buffers(u_nbuffers), .wgt_base, .wgt_size, .act_base, .act_size,
            .kv_base, .kv_size, .ntok(u_ntok), .pos0(u_pos),
            .busy(v_busy), .done(v_done), .err_code(v_code), .err_info(v_info),
            .rd_cmd_valid(vrc_v), .rd_cmd_ready(rc_r && !rsel), .rd_cmd_addr(vrc_a), .rd_cmd_beats(vrc_n),
            .rd_valid(rd_v && !rsel), .rd_ready(vrd_r), .rd_data(rd_d),
            .rd_busy(ur_busy[0]), .rd_err(rd_e && !rsel), .rd_err_resp(rd_er),
            .wr_cmd_valid(vwc_v), .wr_cmd_ready(wc_r && !rsel), .wr_cmd_addr(vwc_a), .wr_cmd_beats(vwc_n),
            .wr_valid(vwd_v), .wr_ready(wd_r && !rsel), .wr_data(vwd_d),
            .wr_busy(wr_b), .wr_err(wr_e && !rsel), .wr_err_resp(wr_er)
        );
        es_row #(.Q(Q), .MAXTOK(MAXTOK), .ARGMAX(UNITS[2])) u_row (
            .clk, .rst_n, .abort, .go(go_row), .instr(u_instr), .n_buffers(u_nbuffers), .act_base, .act_size,
            .ntok(u_ntok), .busy(ro_busy), .done(ro_done), .err_code(ro_code), .err_info(ro_info),
            .am_valid, .am_index,
            .rd_cmd_valid(orc_v), .rd_cmd_ready(rc_r && rsel), .rd_cmd_addr(orc_a), .rd_cmd_beats(orc_n),
            .rd_valid(rd_v && rsel), .rd_ready(ord_r), .rd_data(rd_d),
            .rd_busy(ur_busy[0]), .rd_err(rd_e && rsel), .rd_err_resp(rd_er),
            .wr_cmd_valid(owc_v), .wr_cmd_ready(wc_r && rsel), .wr_cmd_addr(owc_a), .wr_cmd_beats(owc_n),
            .wr_valid(owd_v), .wr_ready(wd_r && rsel), .wr_data(owd_d),
            .wr_busy(wr_b), .wr_err(wr_e && rsel), .wr_err_resp(wr_er)
        );
    end else begin : g_novec
        assign ar_v[4] = 1'b0;
        assign ar_a[4] = '0;
        assign ar_l[4] = '0;
        assign aw_v[1] = 1'b0;
        assign aw_a[1] = '0;
        assign aw_l[1] = '0;
        assign w_v[1] = 1'b0;
        assign w_d[1] = '0;
        assign w_s[1] = '0;
        assign w_l[1] = 1'b0;
        assign b_rdy[1] = 1'b1;
        assign ur_busy[0] = 1'b0;
        assign uw_busy[0] = 1'b0;
        assign {v_busy, v_done, ro_busy, ro_done, am_valid} = '0;
        assign {v_code, ro_code} = '0;
        assign {v_info, ro_info, am_index} = '0;
        assign rr_u[0] = 1'b1;
        wire unused_nv = &{1'b0, ar_r[4], r_v[4], aw_r[1], w_r[1], b_v[1], go_vec, go_row};
    end
    if (UNITS[1]) begin : g_attn
        logic         rc_v, rc_r, rd_v, rd_r, rd_e, wc_v, wc_r, wd_v, wd_r, wr_e;
        logic [39:0]  rc_a, wc_a;
        logic [31:0]  rc_n, wc_n, cyc_store, cyc_attend;
        logic [DW-1:0] rd_d, wd_d;
        logic [1:0]   rd_er, wr_er;
        es_axi_rd #(.DW(DW), .BURST(BURST), .OUTST(16), .FIFO(16 * BURST)) u_ard (
            .clk, .rst_n, .abort,
            .cmd_valid(rc_v), .cmd_ready(rc_r), .cmd_addr(rc_a), .cmd_beats(rc_n),
            .ar_valid(ar_v[5]), .ar_ready(ar_r[5]), .ar_addr(ar_a[5]), .ar_len(ar_l[5]),
            .r_valid(r_v[5]), .r_ready(rr_u[1]), .r_data(m_axi_rdata), .r_resp(m_axi_rresp), .r_last(m_axi_rlast),
            .out_valid(rd_v), .out_ready(rd_r), .out_data(rd_d),
            .busy(ur_busy[1]), .err(rd_e), .err_resp(rd_er)
        );
        es_axi_wr #(.DW(DW), .BURST(BURST), .FIFO(2 * BURST)) u_awr (
            .clk, .rst_n, .abort,
            .cmd_valid(wc_v), .cmd_ready(wc_r), .cmd_addr(wc_a), .cmd_beats(wc_n),
            .in_valid(wd_v), .in_ready(wd_r), .in_data(wd_d),
            .aw_valid(aw_v[2]), .aw_ready(aw_r[2]), .aw_addr(aw_a[2]), .aw_len(aw_l[2]),
            .w_valid(w_v[2]), .w_ready(w_r[2]), .w_data(w_d[2]), .w_strb(w_s[2]),
            .w_last(w_l[2]), .b_valid(b_v[2]), .b_ready(b_rdy[2]), .b_resp(m_axi_bresp),
            .busy(uw_busy[1]), .err(wr_e), .err_resp(wr_er)
        );
        logic [KVP*128-1:0] kv_d;
        if (KVP > 1) begin : g_kvw
            assign kv_d = w_all_d[KVP*128-1:0];
        end else begin : g_kv1
            assign kv_d = '0;
            wire unused_kv = &{1'b0, w_all_d, w_all_v};
        end
        assign at_sel = KVP > 1 && a_busy;
        es_attn #(.Q(Q), .MAXTOK(MAXTOK), .DMAX(DMAX), .SMAX(SMAX), .NQ(NQ), .KVP(KVP)) u_attn (
            .clk, .rst_n, .abort, .go(go_attn), .instr(u_instr), .prog_base, .prog_size,
            .n_regions(u_nregions), .n_buffers(u_nbuffers), .wgt_base, .wgt_size, .act_base, .act_size,
            .kv_base, .kv_size, .ntok(u_ntok), .pos0(u_pos),
            .busy(a_busy), .done(a_done), .err_code(a_code), .err_info(a_info),
            .rd_cmd_valid(rc_v), .rd_cmd_ready(rc_r), .rd_cmd_addr(rc_a), .rd_cmd_beats(rc_n),
            .rd_valid(rd_v), .rd_ready(rd_r), .rd_data(rd_d),
            .rd_busy(ur_busy[1]), .rd_err(rd_e), .rd_err_resp(rd_er),
            .kv_cmd_valid(at_kc_v), .kv_cmd_ready(at_kc_r), .kv_cmd_addr(at_kc_a), .kv_cmd_beats(at_kc_n),
            .kv_cmd_stride(at_kc_s), .kv_valid(w_all_v), .kv_ready(at_kv_r), .kv_data(kv_d),
            .kv_busy(w_busy), .kv_err(w_err), .kv_err_resp(w_resp),
            .wr_cmd_valid(wc_v), .wr_cmd_ready(wc_r), .wr_cmd_addr(wc_a), .wr_cmd_beats(wc_n),
            .wr_valid(wd_v), .wr_ready(wd_r), .wr_data(wd_d),
            .wr_busy(uw_busy[1]), .wr_err(wr_e), .wr_err_resp(wr_er),
            .cyc_store, .cyc_attend
        );
        wire unused_a = &{1'b0, cyc_store, cyc_attend};
    end else begin : g_noattn
        assign ar_v[5] = 1'b0;
        assign ar_a[5] = '0;
        assign ar_l[5] = '0;
        assign aw_v[2] = 1'b0;
        assign aw_a[2] = '0;
        assign aw_l[2] = '0;
        assign w_v[2] = 1'b0;
        assign w_d[2] = '0;
        assign w_s[2] = '0;
        assign w_l[2] = 1'b0;
        assign b_rdy[2] = 1'b1;
        assign ur_busy[1] = 1'b0;
        assign uw_busy[1] = 1'b0;
        assign {a_busy, a_done} = '0;
        assign a_code = '0;
        assign a_info = '0;
        assign rr_u[1] = 1'b1;
        assign at_sel = 1'b0;
        assign at_kc_v = 1'b0;
        assign at_kc_a = '0;
        assign at_kc_n = '0;
        assign at_kc_s = '0;
        assign at_kv_r = 1'b0;
        wire unused_na = &{1'b0, at_kc_r, w_all_v, w_all_d, ar_r[5], r_v[5], aw_r[2], w_r[2], b_v[2], go_attn, u_instr, u_nregions,
                            u_nbuffers, u_pos, u_ntok};
    end
    // one unit runs at a time: its done and code come back to the sequencer
    assign u_done = v_done || a_done || ro_done;
    assign u_err_code = v_done ? v_code : a_done ? a_code : ro_code;
    assign u_err_info = v_done ? v_info : a_done ? a_info : ro_info;
    assign u_idle = !v_busy && !a_busy && !ro_busy && !ur_busy[0] && !ur_busy[1] && !uw_busy[0] && !uw_busy[1];
    always_ff @(posedge clk) begin
        if (!rst_n) argmax <= '0;
        else if (am_valid) argmax <= am_index;
    end

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
            vec_cycles <= '0;
            attn_cycles <= '0;
        end else begin
            if (v_busy || ro_busy) vec_cycles <= vec_cycles + 32'd1;
            if (a_busy) attn_cycles <= attn_cycles + 32'd1;
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

    assign irq = irq_en && (st_done || st_host || st_error);

    wire unused = &{1'b0, kv_base, kv_size, e_res_last, r_rdy, b_rdy, rr_u, m_axi_w0_rid, m_axi_w1_rid, m_axi_w2_rid,
                    m_axi_w3_rid};

endmodule
