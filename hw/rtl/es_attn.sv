// Attention unit: executes ATTENTION of program.bin over the INT8 KV cache in the KV region, bit-exact
// to edgestream.numerics (quant_heads, attention), behind the dispatch interface of docs/units.md
// (es_seq pulses `go` with the 32-byte instruction; the unit resolves and checks its operands,
// streams, and pulses `done` with an error code once every write is acknowledged).
//
// Operands (docs/units.md "KV cache in DDR"): a dst, f0 q, f1 k, f2 v (f32, tile layout), f3 layer |
// layers << 16, f4 head dim D, f5 heads | KV heads << 16, f6 float32(1/sqrt(D)). The checks run in the
// documented order before any data moves: fields (ERR FIELD), the four buffer-map entries (fetched
// back to back; an index out of range is not fetched), the KV region (capacity P = KV_SIZE /
// (layers*KVH*(2*DB+1)*16) slots; POS + NTOK > P: ERR RANGE; > SMAX: ERR FIELD).
//
// Two FSMs walk one sequence of reads: the issuer sends the read commands as early as the read
// master takes them (rows of the next query set stream in while this one computes), the consumer
// takes the beats in the same order. Sequence:
//   phase 1  for token t, KV head g: k row, v row (quantized: es_attn_quant) -> K slot, V slot of
//            position POS+t (writes); then every write response (the issuer holds the first key
//            stream until then: the cache it reads includes these slots)
//   phase 2  for KV head g, for each set of up to NQ (token, head) queries of its GQA group
//            (token-major): the q rows (quantized into the dot lanes), the key stream (S K slots,
//            S = POS + last token + 1: pass 1, es_attn_dot + es_attn_score, scores into SBUF),
//            pass 2 on chip (es_attn_soft: E, a = float32(E)*dv, den, max a), the per-query scalars
//            (es_attn_scal), the value stream (pass 3: es_attn_wgt weights A, es_attn_vacc sums),
//            the outputs (es_attn_out) written to dst per query.
// Keys past a query's position are masked (E = 0). dst must not overlap q, k or v (q rows of later
// sets are read ahead of earlier outputs).
// Faults: an AXI error response ends the run at once with ERR AXI_READ / AXI_WRITE (the shell's fault
// path then aborts the streams); `abort` stops everything, waits until both masters are idle, and
// pulses done.
module es_attn #(
    parameter int Q = es_regs_pkg::ES_Q,
    parameter int MAXTOK = es_regs_pkg::ES_MAXTOK,
    parameter int DMAX = 256,        // longest head row (multiple of 16)
    parameter int SMAX = 4096,       // longest context (score buffer depth, power of two)
    parameter int NQ = 4,            // queries per key/value stream (GQA group x tokens)
    parameter int KVP = 1            // KV beats per cycle: 1, the keys and values on the read stream;
                                     // 2 or 4, on the KV stream (KVP read masters, striped slots)
) (
    input  logic         clk,
    input  logic         rst_n,
    // a C++ word: only a module linted or built as the top would name a model member after it
    // verilator lint_off SYMRSVDWORD
    input  logic         abort,
    // verilator lint_on SYMRSVDWORD
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
    input  logic [39:0]  kv_base,
    input  logic [31:0]  kv_size,
    input  logic [15:0]  ntok,
    input  logic [31:0]  pos0,
    output logic         busy,
    output logic         done,
    output logic [7:0]   err_code,
    output logic [31:0]  err_info,
    // read stream (an es_axi_rd of the shell)
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
    // KV stream (KVP > 1: KVP es_axi_rd of the shell given one command, port p reading kv_cmd_beats
    // beats at kv_cmd_addr + p * kv_cmd_stride; a word is their beats side by side, port p at
    // [128p +: 128], taken when every port has one. KVP = 1: unused, tie off)
    output logic         kv_cmd_valid,
    input  logic         kv_cmd_ready,
    output logic [39:0]  kv_cmd_addr,
    output logic [31:0]  kv_cmd_beats,
    output logic [31:0]  kv_cmd_stride,
    input  logic         kv_valid,
    output logic         kv_ready,
    input  logic [KVP*128-1:0] kv_data,
    input  logic         kv_busy,
    input  logic         kv_err,
    input  logic [1:0]   kv_err_resp,
    // write stream (an es_axi_wr of the shell)
    output logic         wr_cmd_valid,
    input  logic         wr_cmd_ready,
    output logic [39:0]  wr_cmd_addr,
    output logic [31:0]  wr_cmd_beats,
    output logic         wr_valid,
    input  logic         wr_ready,
    output logic [127:0] wr_data,
    input  logic         wr_busy,
    input  logic         wr_err,
    input  logic [1:0]   wr_err_resp,
    // cycles of the last instruction by phase (bench figures; not registers yet)
    output logic [31:0]  cyc_store,
    output logic [31:0]  cyc_attend
);
    localparam int MT = MAXTOK;
    localparam int LMT = $clog2(MT);
    localparam int LQ = $clog2(Q);
    localparam int LU = $clog2(4 * Q);
    localparam int LR = LU - 4;
    localparam logic [7:0] UB = 8'(1 << LR);   // beats per unit
    localparam int DBMAX = DMAX / 16;
    localparam int LDB = $clog2(DBMAX);
    localparam int LS = $clog2(SMAX);
    localparam int LNQ = (NQ > 1) ? $clog2(NQ) : 1;
    localparam int AW = 24 + LS;     // value sums: |num| <= 32767 * 128 * SMAX
    localparam int LK = (KVP > 1) ? $clog2(KVP) : 0;

    // ---------------- instruction and its figures
    logic [15:0] ia;
    logic [31:0] f0, f1, f2, f3, f4, f5, scale;
    logic [15:0] nt;
    logic [31:0] p0;
    wire  [15:0] layer = f3[15:0], layers = f3[31:16];
    wire  [15:0] nh = f5[15:0], nkv = f5[31:16];
    wire  [8:0]  dd = f4[8:0];                 // D (checked <= DMAX)
    wire  [4:0]  db = f4[8:4];                 // beats per int8 head row
    wire  [6:0]  d4 = 7'(f4[8:2]);             // beats per f32 head row
    // words (KVP beats) of a K slot (scale beat + DB) and of a V slot (DB), each padded to whole words;
    // at KVP = 1 the slots of today: DB + 1 and DB beats
    wire  [5:0]  kw = 6'((6'(db) + 6'd1 + 6'(KVP - 1)) >> LK);
    wire  [5:0]  vw = 6'((6'(db) + 6'(KVP - 1)) >> LK);
    logic [15:0] rg;                           // GQA group size H / KVH
    logic [31:0] wq, wk;                       // widths H*D, KVH*D
    logic [31:0] rbq, rbk;                     // units per token of q/dst, k/v
    logic [31:0] slots;                        // P
    logic [31:0] blockb, kbytes;               // block (l, g) bytes, its K part
    logic [31:0] kslot_b, vslot_b;             // bytes of a K slot, a V slot (in one stripe)
    logic [31:0] kstripe, vstripe;             // bytes of a K stripe, a V stripe (KVP > 1)
    logic [39:0] lbase;                        // block (layer, 0)

    // ---------------- buffer-map entries: 0 q, 1 k, 2 v, 3 dst
    logic [31:0] m_off [4];
    logic [31:0] m_cap [4];
    logic [31:0] m_w [4];
    logic [7:0]  m_dt [4];
    logic [31:0] idx [4];
    logic [3:0]  ok;
    logic [39:0] ba [4];                       // buffer addresses
    logic [39:0] fa [4];                       // their map entries' addresses
    always_comb begin
        idx[0] = f0;
        idx[1] = f1;
        idx[2] = f2;
        idx[3] = 32'(ia);
    end
    // registered (the compares and adds are 20 LUT levels in front of the fetch logic): the fields
    // are latched at `go` and the divider runs several cycles before C_FETCH reads ok and fa; ba is
    // read from phase 1 on, m_off long settled
    always_ff @(posedge clk) begin
        for (int k = 0; k < 4; k++) begin
            ok[k] <= idx[k] < n_buffers && (33'(idx[k]) + 33'd1) * 33'd16 <= 33'(act_size);
            ba[k] <= act_base + 40'(m_off[k]);
            fa[k] <= act_base + (40'(idx[k]) << 4);
        end
    end

    // consumer states (localparams, not an enum: Icarus 11 evaluates some enum literals used in port
    // connections to z)
    localparam logic [4:0] C_IDLE = 5'd0, C_DIV = 5'd1, C_FCHK = 5'd2, C_FETCH = 5'd3, C_MCHK = 5'd4, C_KVDIV = 5'd5;
    localparam logic [4:0] C_KVCHK = 5'd6, C_GEO = 5'd7, C_GEO2 = 5'd8, C1_KV = 5'd9, C1_W = 5'd10, C1_BAR = 5'd11;
    localparam logic [4:0] C2_SET = 5'd12, C2_QRY = 5'd13, C2_P1 = 5'd14, C2_P2 = 5'd15, C2_SC = 5'd16, C2_P3 = 5'd17;
    localparam logic [4:0] C2_P3W = 5'd18, C2_SET2 = 5'd19, C2_NEXT = 5'd20, C_FIN = 5'd21, C_ABORT = 5'd22;
    logic [4:0] cs;

    // ---------------- divider (group size, then capacity)
    logic        dv_start, dv_busy;
    logic [31:0] dv_n, dv_q;
    logic [47:0] dv_d, dv_r;
    es_attn_div #(.N(32), .M(48)) u_div (
        .clk, .rst_n, .start(dv_start), .n(dv_n), .d(dv_d), .busy(dv_busy), .q(dv_q), .r(dv_r)
    );

    // ---------------- on-chip buffers
    logic [127:0] kbuf [DBMAX];                // quantized K row (phase 1)
    logic [127:0] vbuf [DBMAX];                // quantized V row (phase 1)
    logic [31:0]  dk_r, dv_r1;

    // score buffer: scores (pass 1) then weights a (pass 2) of NQ queries per key; dv per key
    logic [NQ*32-1:0] sbuf [SMAX];
    logic [31:0]      dvbuf [SMAX];
    logic             sb_we;
    logic [LS-1:0]    sb_waddr, sb_raddr;
    logic [NQ*32-1:0] sb_wdata, sb_rdata;
    logic [31:0]      dvb_rdata;
    logic             dvb_we;
    logic [LS-1:0]    dvb_waddr;
    logic [31:0]      dvb_wdata;
    always_ff @(posedge clk) begin
        if (sb_we) sbuf[sb_waddr] <= sb_wdata;
        if (dvb_we) dvbuf[dvb_waddr] <= dvb_wdata;
        sb_rdata <= sbuf[sb_raddr];
        dvb_rdata <= dvbuf[sb_raddr];
    end

    // ---------------- query set (consumer side)
    logic [15:0] q_t [NQ];                     // token of query n
    logic [15:0] q_h [NQ];                     // head of query n
    logic [31:0] q_pos [NQ];                   // its position (keys j <= q_pos visible)
    logic [31:0] q_dq [NQ];
    logic [LNQ:0] ns;                          // queries in the set
    logic [31:0] sk;                           // keys of the set (S)
    logic [15:0] ct, ci;                       // next query (token, index in group) to take
    logic [15:0] cg, cgh;                      // KV head, its first query head g*rg
    logic [39:0] cgbase;                       // block (layer, cg)
    logic [15:0] c1t, c1g;                     // phase-1 position
    logic        c1v;                          // phase 1: quantizing v (else k)
    logic        c1_hold;                      // PREP: v's quantization waits for the V slot's write job
    logic [LNQ:0] cn;                          // lane being quantized / scaled / written

    // ---------------- the next query set, prepared during this set's passes 2 and 3 (KVP > 1: the
    // query rows arrive on the read stream while the keys and values come on the KV stream, and the dot
    // unit's query memory is free once pass 1 is done): its walk and its quantized rows, so the next
    // set starts with its key stream. At KVP = 1 the query rows queue behind this set's values on the
    // one read stream: the consumer walks and quantizes them in C2_SET / C2_QRY as before.
    localparam bit PREP = KVP > 1;
    localparam logic [2:0] PR_IDLE = 3'd0, PR_HEAD = 3'd1, PR_WALK = 3'd2, PR_SET2 = 3'd3, PR_QRY = 3'd4,
                           PR_RDY = 3'd5;
    logic [2:0]   pr_st;
    logic [15:0]  nq_t [NQ];
    logic [15:0]  nq_h [NQ];
    logic [31:0]  nq_pos [NQ];
    logic [31:0]  nq_dq [NQ];
    logic [LNQ:0] n_ns, psn, pn;
    logic [31:0]  n_sk;
    logic [15:0]  n_slast;
    wire          pr_q = PREP && pr_st == PR_QRY;

    // ---------------- quantizer
    logic         qz_start, qz_done, qz_in_valid, qz_in_ready, qz_we;
    logic [LDB-1:0] qz_addr;
    logic [127:0] qz_data;
    logic [31:0]  qz_d;
    // KVP > 1: the second division beside the element pipe (the KVP = 1 unit keeps its fitted cycles)
    es_attn_quant #(.DBMAX(DBMAX), .OVL(KVP > 1)) u_quant (
        .clk, .rst_n, .clear(cs == C_ABORT || cs == C_IDLE), .start(qz_start), .nbeats(d4),
        .in_valid(qz_in_valid), .in_ready(qz_in_ready), .in_data(rd_data),
        .out_we(qz_we), .out_addr(qz_addr), .out_data(qz_data), .done(qz_done), .d(qz_d)
    );

    // ---------------- pass 1: dot products and scores
    logic           p1_take;                   // a key-stream beat is consumed
    logic [LDB:0]   kb;                        // beat in the K slot (0 = scale beat)
    logic [31:0]    kj, sj;                    // key of the next beat, next score to store
    logic           dot_valid;
    logic [NQ*32-1:0] dot;
    // the key and value streams: the read stream at KVP = 1, the KV stream's words at KVP > 1
    logic [KVP*128-1:0] kvd;
    logic           kvv;
    if (KVP > 1) begin : g_kvs
        assign kvd = kv_data;
        assign kvv = kv_valid;
    end else begin : g_kv1
        assign kvd = rd_data;
        assign kvv = rd_valid;
    end
    wire            kb_last = kb == (LDB + 1)'(kw - 6'd1);
    // KVP = 1: the row's beats 1 .. DB of the slot (the scale beat to the score chain only); KVP > 1:
    // every word of the slot (the dot masks the scale beat and the padding)
    es_attn_dot #(.NQ(NQ), .DBMAX(DBMAX), .KVP(KVP)) u_dot (
        .clk, .rst_n, .db,
        .q_we(qz_we && (cs == C2_QRY || pr_q)), .q_lane(pr_q ? pn[LNQ-1:0] : cn[LNQ-1:0]), .q_addr(qz_addr),
        .q_data(qz_data),
        .k_valid(p1_take && (KVP > 1 || kb != '0)), .k_addr(KVP > 1 ? kb : kb - 1'b1), .k_last(kb_last),
        .k_data(kvd), .dot_valid, .dot
    );
    // the floating-point chains start empty with every instruction (an AXI fault ends one mid-stream)
    wire            fp_rst_n = rst_n && cs != C_ABORT && cs != C_IDLE;
    logic           sc_valid, sc_room;
    logic [NQ*32-1:0] sc_s;
    logic [NQ*32-1:0] dq_all;
    always_comb for (int n = 0; n < NQ; n++) dq_all[32*n +: 32] = q_dq[n];
    es_attn_score #(.NQ(NQ)) u_score (
        .clk, .rst_n(fp_rst_n), .scale, .dq(dq_all), .ns,
        .k_valid(p1_take && kb == '0), .dk(kvd[31:0]), .k_room(sc_room),
        .dot_valid, .dot, .s_valid(sc_valid), .s(sc_s)
    );
    logic [NQ*32-1:0] smax;
    logic [NQ-1:0]    seen;                    // lane has a visible score

    // ---------------- pass 2: softmax weights
    // one chain for the set's lanes: key p2j is read ns times (lane p2n), one (key, lane) per cycle
    logic [31:0]    p2j;                       // next key to issue
    logic [LNQ-1:0] p2n, p2n1;                 // its lane; the lane of the SBUF word read
    logic           p2_v1, p2l1;               // SBUF read data valid (one cycle after issue); last lane
    logic           vis1;
    logic           so_valid, so_iv;
    logic [LNQ-1:0] so_il;
    logic [31:0]    so_ia;
    logic [16:0]    so_ie;
    logic [NQ*32-1:0] so_a;
    logic [31:0]    soj;                       // key of the next weight leaving
    logic [NQ*32-1:0] amax;
    logic [NQ*48-1:0] den;
    es_attn_soft #(.NQ(NQ)) u_soft (
        .clk, .rst_n(fp_rst_n), .in_valid(p2_v1), .in_lane(p2n1), .in_last(p2l1), .vis(vis1),
        .s(sb_rdata[32*p2n1 +: 32]), .dv(dvb_rdata), .smax(smax[32*p2n1 +: 32]),
        .item_valid(so_iv), .item_lane(so_il), .item_a(so_ia), .item_e(so_ie), .out_valid(so_valid), .a(so_a)
    );
    wire p2_last = 32'(p2n) + 32'd1 == 32'(ns);

    // ---------------- per-query scalars: the set's mults before pass 3 (C2_SC, lane cn), its f's during
    // pass 3 (lane fn; only the outputs need them)
    logic        scl_start, scl_fop, scl_done;
    logic [31:0] scl_mult, scl_f;
    logic [31:0] q_mult [NQ];
    logic [31:0] q_f [NQ];
    logic        f_run;                        // the f's of the set are being computed
    logic [LNQ:0] fn;
    wire [LNQ-1:0] scl_l = f_run ? fn[LNQ-1:0] : cn[LNQ-1:0];
    es_attn_scal u_scal (
        .clk, .rst_n, .clear(cs == C_ABORT || cs == C_IDLE), .start(scl_start), .fop(scl_fop),
        .amax(amax[32*scl_l +: 32]), .den(den[48*scl_l +: 48]), .done(scl_done), .mult(scl_mult), .f(scl_f)
    );

    // ---------------- pass 3: weights A and the value sums
    localparam logic [1:0] OE_IDLE = 2'd0, OE_CONV = 2'd1, OE_WR = 2'd2, OE_WAIT = 2'd3;
    logic [1:0]     oe_st;                     // output engine (below)
    logic [LNQ:0]   oe_n, oe_ns;               // lane being written, lanes of the set
    // one chain for the set's lanes, as pass 2: key wgj is read ns times (lane wgn)
    logic           wg_iss;                    // weight of (wgj, wgn) issued (combinational)
    logic [31:0]    wgj;
    logic [LNQ-1:0] wgn, wgn1;
    logic           wg_v1, wgl1;
    logic           wg_valid;
    logic [NQ*16-1:0] wg_a;
    wire            wg_last = 32'(wgn) + 32'd1 == 32'(ns);
    es_attn_wgt #(.NQ(NQ)) u_wgt (
        .clk, .rst_n(fp_rst_n), .in_valid(wg_v1), .in_lane(wgn1), .in_last(wgl1), .a(sb_rdata[32*wgn1 +: 32]),
        .mult(q_mult[wgn1]), .out_valid(wg_valid), .w(wg_a)
    );
    localparam int AF = 16;                    // weight FIFO (keys), > the weight pipeline depth
    logic           af_valid, af_pop, af_in_ready;
    logic [NQ*16-1:0] af_data;
    logic [4:0]     af_count;
    logic [5:0]     wg_fly;                    // weights issued, not yet in the FIFO
    tlmm_fifo #(.W(NQ * 16), .DEPTH(AF)) u_af (
        .clk, .rst_n(rst_n && cs == C2_P3), .in_valid(wg_valid), .in_ready(af_in_ready), .in_data(wg_a),
        .out_valid(af_valid), .out_ready(af_pop), .out_data(af_data), .count(af_count)
    );
    // weights run ahead of the value stream through the FIFO (credit in keys, taken at a key's first
    // lane: in flight + queued)
    assign wg_iss = cs == C2_P3 && wgj != sk && (wgn != '0 || 32'(wg_fly) + 32'(af_count) < AF - 1);
    logic           p3_take;
    logic [LDB-1:0] vb;                        // beat in the V slot
    logic [31:0]    vj;                        // key of the next value beat
    logic [LNQ-1:0] vl;                        // KVP > 1: the lane the value word goes to this cycle
    // KVP > 1: a value word is taken once per lane of the set (es_attn_vacc), popped on the last
    wire            vl_last = KVP == 1 || 32'(vl) + 32'd1 == 32'(ns);
    logic [LDB-1:0] o_addr;
    logic [16*AW-1:0] o_data;
    es_attn_vacc #(.NQ(NQ), .DBMAX(DBMAX), .AW(AW), .KVP(KVP)) u_vacc (
        .clk, .rst_n, .v_valid(p3_take), .v_first(vj == 32'd0), .v_addr(vb), .v_lane(vl), .v_data(kvd),
        .a_w(af_data),
        .o_addr, .o_lane(oe_n[LNQ-1:0]), .o_data
    );
    logic [2:0]     p3_drain;

    // ---------------- outputs: an engine of their own behind pass 3 (the consumer goes on to the next
    // query set; pass 3 of that set waits until the engine is done with the value sums). Per query
    // lane oe_n: D columns, one per cycle, into obuf as beats of 4, then the row to dst (a write job).
    logic [31:0]    oe_f [NQ];                 // the set's output factors, rows and heads (copies:
    logic [15:0]    oe_t [NQ];                 // the consumer overwrites q_f, q_t, q_h with the next set)
    logic [15:0]    oe_h [NQ];
    logic [LDB+4:0] oc_k;                      // output column being converted
    wire            oc_iss = oe_st == OE_CONV && oc_k != (LDB + 5)'(dd);
    logic           oc_valid;
    logic [127:0]   oc_y;
    logic [LDB+2:0] oc_wk;                     // next output beat to store
    logic [127:0]   obuf [DBMAX * 4];
    es_attn_out #(.AW(AW)) u_out (
        .clk, .rst_n(fp_rst_n), .in_valid(oc_iss), .col(oc_k[1:0]),
        .num(o_data[AW*oc_k[3:0] +: AW]), .f(oe_f[oe_n[LNQ-1:0]]), .out_valid(oc_valid), .y(oc_y)
    );
    assign o_addr = oc_k[LDB+3:4];

    // ---------------- the write side: jobs of one command (K slot, V slot) or a command per unit (output row)
    typedef enum logic [1:0] { WJ_K, WJ_V, WJ_O } wkind_t;
    logic        wj_start, wj_busy;
    wkind_t      wj_kind;
    logic [39:0] wj_addr;
    logic [31:0] wj_stride;
    logic [7:0]  wj_rem;                       // beats of the job not yet commanded
    logic [7:0]  wj_ob;                        // beat offset of the next command inside its unit
    logic        wj_cont;                      // one contiguous run (else a command per unit)
    logic        wj_strp;                      // a striped slot (KVP > 1): a command of wj_ck beats per
    logic [7:0]  wj_ck;                        //   stripe, wj_stride apart, beats KVP apart in the slot
    logic [7:0]  wj_sp;                        // stripe of the current command
    wire         wj_st = KVP > 1 && wj_strp;
    logic [31:0] wj_left;                      // beats of the current command left
    logic        wj_cmd_sent;
    logic [6:0]  wj_i;                         // next data beat of the job
    logic [31:0] pos_w;                        // position written (K slot word 2)
    always_comb begin
        wr_data = '0;
        case (wj_kind)
            // (KVP > 1: the slot's padding beats are written as zeros: the streams read them)
            WJ_K: wr_data = wj_i == 7'd0 ? {32'd0, pos_w, dv_r1, dk_r}
                          : KVP > 1 && wj_i > 7'(db) ? 128'd0 : kbuf[LDB'(wj_i - 7'd1)];
            WJ_V: wr_data = KVP > 1 && wj_i >= 7'(db) ? 128'd0 : vbuf[LDB'(wj_i)];
            default: wr_data = obuf[wj_i[LDB+1:0]];
        endcase
    end
    wire [7:0] wj_cb = wj_st ? wj_ck : wj_cont || wj_rem < UB - wj_ob ? wj_rem : UB - wj_ob;   // beats of the next command
    assign wr_cmd_valid = wj_busy && !wj_cmd_sent && wj_rem != 8'd0 && cs != C_ABORT;
    assign wr_cmd_addr = wj_addr;
    assign wr_cmd_beats = 32'(wj_cb);
    assign wr_valid = wj_busy && wj_cmd_sent && wj_left != 32'd0 && cs != C_ABORT;

    // ---------------- issuer: read commands in consumption order
    typedef enum logic [3:0] { I_IDLE, I_P1, I_P1A, I_P1C, I_SET, I_QA, I_QC, I_BAR, I_K, I_V, I_DONE } istate_t;
    istate_t ist;
    logic [15:0] it, ig, iqt, iqi;             // phase 1 token / KV head; phase 2 next query
    logic        iv;                           // phase 1: v row
    logic [LNQ:0] in_;                         // queries of the set issued
    logic [15:0] ilast;                        // last token of the set
    logic        iwrap, itend;                 // (I_SET, for I_QC) iqi is the group's last; iqt the last token
    logic [39:0] igbase;
    logic [1:0]  iwait;
    logic [39:0] ir_addr;
    logic [31:0] ir_stride;
    logic [7:0]  irem;                         // beats of the head row not yet commanded
    logic [7:0]  iob;                          // beat offset of the next command inside its unit
    logic        icont;                        // the row is one contiguous run
    wire  [7:0]  icb = icont || irem < UB - iob ? irem : UB - iob;   // beats of the next command
    logic [39:0] ra_base;
    logic [31:0] ra_rb;
    logic [15:0] ra_t, ra_h;
    logic [39:0] ra_addr;
    logic [31:0] ra_stride;
    logic [7:0]  ra_ob;
    es_attn_rowaddr #(.Q(Q), .MAXTOK(MT)) u_ra (
        .clk, .base(ra_base), .rb(ra_rb), .ntok(nt), .t(ra_t), .h(ra_h), .d(dd), .addr(ra_addr), .stride(ra_stride),
        .ob(ra_ob)
    );
    logic        p1_done;                      // every phase-1 write acknowledged
    logic        i_go;
    logic [2:0]  fk;                           // entry fetch pointer (issuer, C_FETCH)
    logic [31:0] iS;
    always_comb begin
        rd_cmd_valid = 1'b0;
        rd_cmd_addr = ir_addr;
        rd_cmd_beats = 32'd1 << LR;
        case (ist)
            I_P1C, I_QC: begin
                rd_cmd_valid = irem != 8'd0;
                rd_cmd_beats = 32'(icb);
            end
            I_K: begin
                rd_cmd_valid = KVP == 1;
                rd_cmd_addr = igbase;
                rd_cmd_beats = iS * 32'(kw);
            end
            I_V: begin
                rd_cmd_valid = KVP == 1;
                rd_cmd_addr = igbase + 40'(kbytes);
                rd_cmd_beats = iS * 32'(vw);
            end
            default: ;
        endcase
        if (cs == C_FETCH) begin
            rd_cmd_valid = fk != 3'd4 && ok[fk[1:0]];
            rd_cmd_addr = fa[fk[1:0]];
            rd_cmd_beats = 32'd1;
        end
        if (cs == C_ABORT || cs == C_IDLE) rd_cmd_valid = 1'b0;
    end
    // KVP > 1: the key and value streams as one command to the KV stream's KVP ports (stripe p at
    // + p * stride: S words of the slots per port)
    assign kv_cmd_valid = KVP > 1 && (ist == I_K || ist == I_V) && cs != C_ABORT && cs != C_IDLE;
    assign kv_cmd_addr = ist == I_V ? igbase + 40'(kbytes) : igbase;
    assign kv_cmd_beats = iS * 32'(ist == I_V ? vw : kw);
    assign kv_cmd_stride = ist == I_V ? vstripe : kstripe;
    wire i_kv_ready = KVP > 1 ? kv_cmd_ready : rd_cmd_ready;

    always_ff @(posedge clk) begin
        if (!rst_n || cs == C_ABORT || cs == C_IDLE) begin
            ist <= I_IDLE;
        end else begin
            case (ist)
                I_IDLE: if (i_go) begin
                    ist <= I_P1;
                    it <= '0;
                    ig <= '0;
                    iv <= 1'b0;
                end
                I_P1: begin
                    ra_base <= iv ? ba[2] : ba[1];
                    ra_rb <= rbk;
                    ra_t <= it;
                    ra_h <= ig;
                    iwait <= 2'd2;
                    ist <= I_P1A;
                end
                I_P1A: begin
                    if (iwait != 2'd0) iwait <= iwait - 2'd1;
                    else begin
                        ir_addr <= ra_addr;
                        ir_stride <= ra_stride;
                        irem <= 8'(d4);
                        iob <= ra_ob;
                        icont <= ra_stride == (32'd1 << LU);
                        ist <= I_P1C;
                    end
                end
                I_P1C: if (irem == 8'd0) begin
                    if (!iv) iv <= 1'b1;
                    else begin
                        iv <= 1'b0;
                        if (ig + 16'd1 != nkv) ig <= ig + 16'd1;
                        else begin
                            ig <= '0;
                            it <= it + 16'd1;
                        end
                    end
                    ist <= (iv && ig + 16'd1 == nkv && it + 16'd1 == nt) ? I_SET : I_P1;
                    if (iv && ig + 16'd1 == nkv && it + 16'd1 == nt) begin
                        ig <= '0;
                        iqt <= '0;
                        iqi <= '0;
                        igbase <= lbase;
                        in_ <= '0;
                    end
                end else if (rd_cmd_ready) begin
                    // the next chunk: the start of the token's next unit
                    irem <= irem - icb;
                    iob <= '0;
                    ir_addr <= ir_addr - (40'(iob) << 4) + 40'(ir_stride);
                end
                I_SET: begin
                    // next query of the set: its q row
                    ra_base <= ba[0];
                    ra_rb <= rbq;
                    ra_t <= iqt;
                    ra_h <= ig * rg + iqi;
                    ilast <= iqt;
                    iwrap <= iqi + 16'd1 == rg;
                    itend <= iqt + 16'd1 == nt;
                    iwait <= 2'd2;
                    ist <= I_QA;
                end
                I_QA: begin
                    if (iwait != 2'd0) iwait <= iwait - 2'd1;
                    else begin
                        ir_addr <= ra_addr;
                        ir_stride <= ra_stride;
                        irem <= 8'(d4);
                        iob <= ra_ob;
                        icont <= ra_stride == (32'd1 << LU);
                        ist <= I_QC;
                    end
                end
                I_QC: if (irem == 8'd0) begin
                    // the next query (iqt < nt here: the set ends when the last token's group is done)
                    iqi <= iwrap ? '0 : iqi + 16'd1;
                    if (iwrap) iqt <= iqt + 16'd1;
                    in_ <= in_ + 1'b1;
                    if (32'(in_) + 32'd1 == NQ || (iwrap && itend)) begin
                        iS <= p0 + 32'(ilast) + 32'd1;
                        ist <= I_BAR;
                    end else ist <= I_SET;
                end else if (rd_cmd_ready) begin
                    // the next chunk: the start of the token's next unit
                    irem <= irem - icb;
                    iob <= '0;
                    ir_addr <= ir_addr - (40'(iob) << 4) + 40'(ir_stride);
                end
                I_BAR: if (p1_done) ist <= I_K;
                I_K: if (i_kv_ready) ist <= I_V;
                I_V: if (i_kv_ready) begin
                    in_ <= '0;
                    if (iqt != nt) ist <= I_SET;
                    else begin
                        iqt <= '0;
                        iqi <= '0;
                        igbase <= igbase + 40'(blockb);
                        if (ig + 16'd1 == nkv) ist <= I_DONE;
                        else begin
                            ig <= ig + 16'd1;
                            ist <= I_SET;
                        end
                    end
                end
                default: ;
            endcase
        end
    end

    // ---------------- consumer
    logic [3:0]  fpend;                        // fetched entries whose beat has not arrived
    logic [1:0]  mk;                           // map entry being checked
    logic [1:0]  cw;
    logic [39:0] oa_base;
    logic [15:0] oa_t, oa_h;
    logic [39:0] oa_addr;
    logic [31:0] oa_stride;
    logic [7:0]  oa_ob;
    es_attn_rowaddr #(.Q(Q), .MAXTOK(MT)) u_oa (
        .clk, .base(oa_base), .rb(rbq), .ntok(nt), .t(oa_t), .h(oa_h), .d(dd), .addr(oa_addr), .stride(oa_stride),
        .ob(oa_ob)
    );
    logic [47:0] tiles_rbq, tiles_rbk;
    logic [31:0] kv_pos;
    wire [15:0] tiles = 16'((32'(nt) + 32'(MT - 1)) >> LMT);
    always_ff @(posedge clk) begin
        tiles_rbq <= 48'(tiles) * 48'(rbq);
        tiles_rbk <= 48'(tiles) * 48'(rbk);
    end
    wire [63:0] need_q = 64'(tiles_rbq) << (LMT + LU);
    wire [63:0] need_k = 64'(tiles_rbk) << (LMT + LU);

    // rd data routing
    wire in_q = cs == C1_KV || cs == C2_QRY || pr_q;
    assign qz_in_valid = in_q && rd_valid;
    // a key's scale beat waits while the score chain is full (ns > db + 1: short rows, full sets)
    assign p1_take = cs == C2_P1 && kvv && kj != sk && (kb != '0 || sc_room);
    assign p3_take = cs == C2_P3 && kvv && af_valid && vj != sk;
    wire   vb_last = vb == LDB'(vw - 6'd1);
    assign af_pop = p3_take && vb_last && vl_last;
    always_comb begin
        rd_ready = 1'b0;
        case (cs)
            C_FETCH: rd_ready = 1'b1;
            C1_KV, C2_QRY: rd_ready = qz_in_ready;
            C2_P1: rd_ready = KVP == 1 && kj != sk && (kb != '0 || sc_room);
            C2_P3: rd_ready = KVP == 1 && af_valid && vj != sk;
            C_ABORT: rd_ready = 1'b1;
            default: rd_ready = 1'b0;
        endcase
        if (pr_q) rd_ready = qz_in_ready;   // (passes 2 and 3 take nothing else from the read stream)
    end
    assign kv_ready = KVP > 1 && (cs == C_ABORT || (cs == C2_P1 && kj != sk && (kb != '0 || sc_room))
                                  || (cs == C2_P3 && af_valid && vj != sk && vl_last));
    assign busy = cs != C_IDLE;

    wire kv_fault = KVP > 1 && kv_err;
    wire ax_fault = rd_err || wr_err || kv_fault;

    // the next query set: C2_SET walks (ct, ci) over up to NQ (token, index in group) pairs,
    // token-major, one lane per cycle (sn; the walk as one combinational loop was 18 LUT levels)
    logic [LNQ:0] sn;
    logic [15:0]  slast;                       // the set's last token

    // pass-1 scores: visibility of key sj per lane
    logic [NQ-1:0] svis;
    always_comb for (int n = 0; n < NQ; n++) svis[n] = n < 32'(ns) && sj <= q_pos[n];

    function automatic logic fgt(input logic [31:0] a, input logic [31:0] b);   // a > b, finite floats
        logic [31:0] ka, kb2;
        ka = a[31] ? ~a : a | 32'h8000_0000;
        kb2 = b[31] ? ~b : b | 32'h8000_0000;
        fgt = ka > kb2;
    endfunction

    always_ff @(posedge clk) begin
        done <= 1'b0;
        dv_start <= 1'b0;
        qz_start <= 1'b0;
        scl_start <= 1'b0;
        wj_start <= 1'b0;
        i_go <= 1'b0;
        sb_we <= 1'b0;
        dvb_we <= 1'b0;
        if (!rst_n) begin
            cs <= C_IDLE;
            err_code <= es_regs_pkg::ES_ERR_NONE;
            err_info <= '0;
            wj_busy <= 1'b0;
            oe_st <= OE_IDLE;
            f_run <= 1'b0;
            p1_done <= 1'b0;
            cyc_store <= '0;
            cyc_attend <= '0;
            pr_st <= PR_IDLE;
        end else if (abort && cs != C_IDLE && cs != C_ABORT) begin
            cs <= C_ABORT;
            wj_busy <= 1'b0;
            oe_st <= OE_IDLE;
            f_run <= 1'b0;
            pr_st <= PR_IDLE;
        end else if (cs != C_IDLE && cs != C_ABORT && ax_fault) begin
            pr_st <= PR_IDLE;
            err_code <= rd_err || kv_fault ? es_regs_pkg::ES_ERR_AXI_READ : es_regs_pkg::ES_ERR_AXI_WRITE;
            err_info <= {30'd0, rd_err ? rd_err_resp : kv_fault ? kv_err_resp : wr_err_resp};
            wj_busy <= 1'b0;
            oe_st <= OE_IDLE;
            f_run <= 1'b0;
            done <= 1'b1;
            cs <= C_IDLE;
        end else begin
            if (cs == C1_KV || cs == C1_W || cs == C1_BAR) cyc_store <= cyc_store + 32'd1;
            if ((cs >= C2_SET && cs <= C2_NEXT) || cs == C_FIN) cyc_attend <= cyc_attend + 32'd1;

            // ---- write jobs
            if (wj_start) begin
                wj_busy <= 1'b1;
                wj_cmd_sent <= 1'b0;
                wj_i <= '0;
            end else if (wj_busy) begin
                if (!wj_cmd_sent) begin
                    if (wj_rem == 8'd0) wj_busy <= 1'b0;
                    else if (wr_cmd_ready) begin
                        wj_cmd_sent <= 1'b1;
                        wj_left <= 32'(wj_cb);
                        wj_rem <= wj_rem - wj_cb;
                    end
                end else if (wj_left == 32'd0) begin
                    // the next chunk: the start of the token's next unit (the next stripe)
                    wj_cmd_sent <= 1'b0;
                    wj_addr <= wj_addr - (40'(wj_ob) << 4) + 40'(wj_stride);
                    wj_ob <= '0;
                    if (wj_st) begin
                        wj_sp <= wj_sp + 8'd1;
                        wj_i <= 7'(wj_sp + 8'd1);
                    end
                end else if (wr_ready) begin
                    wj_left <= wj_left - 32'd1;
                    wj_i <= wj_i + (wj_st ? 7'(KVP) : 7'd1);
                end
            end

            // ---- the set's f's, one lane after the other, while pass 3 runs
            if (f_run && scl_done) begin
                q_f[fn[LNQ-1:0]] <= scl_f;
                if (fn + 1'b1 == ns) f_run <= 1'b0;
                else begin
                    fn <= fn + 1'b1;
                    scl_start <= 1'b1;
                end
            end

            // ---- output engine (phase 2: the only writer then)
            case (oe_st)
                OE_CONV: begin
                    if (oc_iss) oc_k <= oc_k + 1'b1;
                    if (oc_valid) begin
                        obuf[oc_wk[LDB+1:0]] <= oc_y;
                        oc_wk <= oc_wk + 1'b1;
                    end
                    oa_base <= ba[3];
                    oa_t <= oe_t[oe_n[LNQ-1:0]];
                    oa_h <= oe_h[oe_n[LNQ-1:0]];
                    if (oc_wk == (LDB + 3)'(d4) && !wj_busy && !wj_start) oe_st <= OE_WR;
                end
                OE_WR: begin
                    wj_start <= 1'b1;
                    wj_kind <= WJ_O;
                    wj_addr <= oa_addr;
                    wj_stride <= oa_stride;
                    wj_rem <= 8'(d4);
                    wj_ob <= oa_ob;
                    wj_cont <= oa_stride == (32'd1 << LU);
                    wj_strp <= 1'b0;
                    oe_st <= OE_WAIT;
                end
                OE_WAIT: if (!wj_busy && !wj_start) begin
                    // obuf is free again: the next lane (the write job has read every beat)
                    if (oe_n + 1'b1 != oe_ns) begin
                        oe_n <= oe_n + 1'b1;
                        oc_k <= '0;
                        oc_wk <= '0;
                        oe_st <= OE_CONV;
                    end else oe_st <= OE_IDLE;
                end
                default: ;
            endcase

            // ---- the next set's walk and queries (PREP), from pass 2 of this set on
            if (PREP) begin
                case (pr_st)
                    PR_IDLE: if (cs == C2_P2 && (ct != nt || cg + 16'd1 != nkv)) begin
                        psn <= '0;
                        n_ns <= '0;
                        pr_st <= ct != nt ? PR_WALK : PR_HEAD;
                    end
                    PR_HEAD: begin
                        // this set was its KV head's last: the next head's first set
                        cg <= cg + 16'd1;
                        cgh <= cgh + rg;
                        ct <= '0;
                        ci <= '0;
                        cgbase <= cgbase + 40'(blockb);
                        pr_st <= PR_WALK;
                    end
                    PR_WALK: begin
                        nq_t[psn[LNQ-1:0]] <= ct;
                        nq_h[psn[LNQ-1:0]] <= cgh + ci;
                        nq_pos[psn[LNQ-1:0]] <= p0 + 32'(ct);
                        if (ct != nt) begin
                            n_slast <= ct;
                            n_ns <= n_ns + 1'b1;
                            if (ci + 16'd1 == rg) begin
                                ci <= '0;
                                ct <= ct + 16'd1;
                            end else ci <= ci + 16'd1;
                        end
                        psn <= psn + 1'b1;
                        if (32'(psn) + 32'd1 == NQ) pr_st <= PR_SET2;
                    end
                    PR_SET2: begin
                        n_sk <= p0 + 32'(n_slast) + 32'd1;
                        pn <= '0;
                        qz_start <= 1'b1;
                        pr_st <= PR_QRY;
                    end
                    PR_QRY: if (qz_done) begin
                        nq_dq[pn[LNQ-1:0]] <= qz_d;
                        if (pn + 1'b1 == n_ns) pr_st <= PR_RDY;
                        else begin
                            pn <= pn + 1'b1;
                            qz_start <= 1'b1;
                        end
                    end
                    default: ;
                endcase
            end

            case (cs)
                C_IDLE: if (go) begin
                    pr_st <= PR_IDLE;
                    ia <= instr[31:16];
                    f0 <= instr[63:32];
                    f1 <= instr[95:64];
                    f2 <= instr[127:96];
                    f3 <= instr[159:128];
                    f4 <= instr[191:160];
                    f5 <= instr[223:192];
                    scale <= instr[255:224];
                    nt <= ntok;
                    p0 <= pos0;
                    err_code <= es_regs_pkg::ES_ERR_NONE;
                    err_info <= '0;
                    p1_done <= 1'b0;
                    cyc_store <= '0;
                    cyc_attend <= '0;
                    dv_start <= 1'b1;
                    dv_n <= 32'(instr[207:192]);
                    dv_d <= 48'(instr[223:208]);
                    cs <= C_DIV;
                end
                C_DIV: if (!dv_busy && !dv_start) begin
                    rg <= dv_q[15:0];
                    wq <= 32'(nh) * 32'(dd);
                    wk <= 32'(nkv) * 32'(dd);
                    cs <= C_FCHK;
                end
                C_FCHK: begin
                    rbq <= (wq + 32'(Q - 1)) >> LQ;   // a row's units, padding included (H*D need not
                    rbk <= (wk + 32'(Q - 1)) >> LQ;   // be a multiple of Q)
                    if (nt == 16'd0 || f4 == 32'd0 || f4[3:0] != 4'd0 || f4 > 32'(DMAX) || nh == 16'd0 || nkv == 16'd0
                        || dv_r != 48'd0 || layers == 16'd0 || layer >= layers) begin
                        err_code <= es_regs_pkg::ES_ERR_FIELD;
                        err_info <= 32'(es_regs_pkg::ES_OP_ATTENTION);
                        done <= 1'b1;
                        cs <= C_IDLE;
                    end else begin
                        fk <= '0;
                        fpend <= ok;
                        cs <= C_FETCH;
                    end
                end
                C_FETCH: begin
                    if (rd_cmd_valid && rd_cmd_ready) fk <= fk + 3'd1;
                    else if (fk != 3'd4 && !ok[fk[1:0]]) fk <= fk + 3'd1;
                    if (rd_valid) begin
                        // beats arrive in the order of the fetched entries: the lowest pending one
                        logic [1:0] e;
                        e = fpend[0] ? 2'd0 : fpend[1] ? 2'd1 : fpend[2] ? 2'd2 : 2'd3;
                        fpend[e] <= 1'b0;
                        m_off[e] <= rd_data[31:0];
                        m_cap[e] <= rd_data[63:32];
                        m_w[e] <= rd_data[95:64];
                        m_dt[e] <= rd_data[103:96];
                    end
                    if (fk == 3'd4 && !rd_valid && !rd_busy) begin
                        mk <= '0;
                        cs <= C_MCHK;
                    end
                end
                C_MCHK: begin
                    logic [63:0] nd;
                    logic [31:0] w;
                    logic [7:0]  fail;
                    nd = (mk == 2'd1 || mk == 2'd2) ? need_k : need_q;
                    w = (mk == 2'd1 || mk == 2'd2) ? wk : wq;
                    fail = es_regs_pkg::ES_ERR_NONE;
                    if (!ok[mk]) fail = es_regs_pkg::ES_ERR_RANGE;
                    else if (m_dt[mk] != es_regs_pkg::ES_B_F32 || m_w[mk] != w) fail = es_regs_pkg::ES_ERR_FIELD;
                    else if (m_off[mk][3:0] != 4'd0 || 33'(m_off[mk]) + 33'(m_cap[mk]) > 33'(act_size)
                             || nd > 64'(m_cap[mk])) fail = es_regs_pkg::ES_ERR_RANGE;
                    if (fail != es_regs_pkg::ES_ERR_NONE) begin
                        err_code <= fail;
                        err_info <= 32'(es_regs_pkg::ES_OP_ATTENTION);
                        done <= 1'b1;
                        cs <= C_IDLE;
                    end else if (mk == 2'd3) begin
                        dv_start <= 1'b1;
                        dv_n <= kv_size;
                        dv_d <= 48'(layers) * 48'(nkv) * (48'(7'(kw) + 7'(vw)) << (4 + LK));
                        cs <= C_KVDIV;
                    end else mk <= mk + 2'd1;
                end
                C_KVDIV: if (!dv_busy && !dv_start) begin
                    slots <= dv_q;
                    cs <= C_KVCHK;
                end
                C_KVCHK: begin
                    logic [7:0] fail;
                    if (kv_base[3:0] != 4'd0 || 33'(p0) + 33'(nt) > 33'(slots)) fail = es_regs_pkg::ES_ERR_RANGE;
                    else if (33'(p0) + 33'(nt) > 33'(SMAX)) fail = es_regs_pkg::ES_ERR_FIELD;
                    else fail = es_regs_pkg::ES_ERR_NONE;
                    kslot_b <= 32'(kw) << 4;
                    vslot_b <= 32'(vw) << 4;
                    blockb <= slots * (32'(7'(kw) + 7'(vw)) << (4 + LK));
                    kbytes <= slots * (32'(kw) << (4 + LK));
                    kstripe <= slots * (32'(kw) << 4);
                    vstripe <= slots * (32'(vw) << 4);
                    if (fail != es_regs_pkg::ES_ERR_NONE) begin
                        err_code <= fail;
                        err_info <= 32'(es_regs_pkg::ES_OP_ATTENTION);
                        done <= 1'b1;
                        cs <= C_IDLE;
                    end else cs <= C_GEO;
                end
                C_GEO: begin
                    lbase <= kv_base + 40'(32'(layer) * 32'(nkv) * blockb);
                    cs <= C_GEO2;
                end
                C_GEO2: begin
                    c1_hold <= 1'b0;
                    i_go <= 1'b1;
                    c1t <= '0;
                    c1g <= '0;
                    c1v <= 1'b0;
                    cgbase <= lbase;
                    qz_start <= 1'b1;
                    cs <= C1_KV;
                end
                // ---- phase 1: quantize k (then v) of (c1t, c1g) into kbuf / vbuf
                C1_KV: begin
                    // PREP: the previous V slot's write job may still read vbuf: v waits for it
                    if (PREP && c1_hold && !wj_busy && !wj_start) begin
                        c1_hold <= 1'b0;
                        qz_start <= 1'b1;
                    end
                    if (qz_done) begin
                        if (!c1v) begin
                            dk_r <= qz_d;
                            c1v <= 1'b1;
                            if (PREP) c1_hold <= 1'b1;
                            else qz_start <= 1'b1;
                        end else begin
                            dv_r1 <= qz_d;
                            c1v <= 1'b0;
                            kv_pos <= p0 + 32'(c1t);
                            cw <= 2'd0;
                            cs <= C1_W;
                        end
                    end
                end
                C1_W: begin
                    // K slot, then V slot, of position p0 + c1t in block (layer, c1g)
                    if (!wj_busy && !wj_start) begin
                        if (cw == 2'd0) begin
                            wj_start <= 1'b1;
                            wj_kind <= WJ_K;
                            wj_addr <= cgbase + 40'(kv_pos) * 40'(kslot_b);
                            wj_rem <= 8'(kw) << LK;
                            wj_ob <= '0;
                            wj_cont <= 1'b1;
                            wj_strp <= KVP > 1;
                            wj_ck <= 8'(kw);
                            wj_sp <= '0;
                            wj_stride <= KVP > 1 ? kstripe : '0;
                            pos_w <= kv_pos;
                            cw <= 2'd1;
                        end else if (cw == 2'd1) begin
                            wj_start <= 1'b1;
                            wj_kind <= WJ_V;
                            wj_addr <= cgbase + 40'(kbytes) + 40'(kv_pos) * 40'(vslot_b);
                            wj_rem <= 8'(vw) << LK;
                            wj_ob <= '0;
                            wj_cont <= 1'b1;
                            wj_strp <= KVP > 1;
                            wj_ck <= 8'(vw);
                            wj_sp <= '0;
                            wj_stride <= KVP > 1 ? vstripe : '0;
                            cw <= 2'd2;
                        end
                    end
                    // PREP: the next row's k is quantized while the V slot is written
                    if (cw == 2'd2 && (PREP || (!wj_busy && !wj_start))) begin
                        if (c1g + 16'd1 != nkv) begin
                            c1g <= c1g + 16'd1;
                            cgbase <= cgbase + 40'(blockb);
                        end else begin
                            c1g <= '0;
                            cgbase <= lbase;
                            c1t <= c1t + 16'd1;
                        end
                        if (c1g + 16'd1 == nkv && c1t + 16'd1 == nt) cs <= C1_BAR;
                        else begin
                            qz_start <= 1'b1;
                            cs <= C1_KV;
                        end
                    end
                end
                C1_BAR: if (!wj_busy && !wj_start && !wr_busy) begin
                    p1_done <= 1'b1;
                    cg <= '0;
                    cgh <= '0;
                    ct <= '0;
                    ci <= '0;
                    cgbase <= lbase;
                    sn <= '0;
                    ns <= '0;
                    cs <= C2_SET;
                end
                // ---- phase 2
                C2_SET: begin
                    // lane sn of the set: the query (ct, ci) if any is left (else a lane past ns)
                    q_t[sn[LNQ-1:0]] <= ct;
                    q_h[sn[LNQ-1:0]] <= cgh + ci;
                    q_pos[sn[LNQ-1:0]] <= p0 + 32'(ct);
                    if (ct != nt) begin
                        slast <= ct;
                        ns <= ns + 1'b1;
                        if (ci + 16'd1 == rg) begin
                            ci <= '0;
                            ct <= ct + 16'd1;
                        end else ci <= ci + 16'd1;
                    end
                    sn <= sn + 1'b1;
                    if (32'(sn) + 32'd1 == NQ) cs <= C2_SET2;
                end
                C2_SET2: begin
                    sk <= p0 + 32'(slast) + 32'd1;
                    cn <= '0;
                    qz_start <= 1'b1;
                    cs <= C2_QRY;
                end
                C2_QRY: if (qz_done) begin
                    q_dq[cn[LNQ-1:0]] <= qz_d;
                    if (cn + 1'b1 == ns) begin
                        kj <= '0;
                        kb <= '0;
                        sj <= '0;
                        seen <= '0;
                        cs <= C2_P1;
                    end else begin
                        cn <= cn + 1'b1;
                        qz_start <= 1'b1;
                    end
                end
                C2_P1: begin
                    if (p1_take) begin
                        if (kb == '0) begin
                            dvb_we <= 1'b1;
                            dvb_waddr <= LS'(kj);
                            dvb_wdata <= kvd[63:32];
                        end
                        if (kb_last) begin
                            kb <= '0;
                            kj <= kj + 32'd1;
                        end else kb <= kb + 1'b1;
                    end
                    if (sc_valid) begin
                        sb_we <= 1'b1;
                        sb_waddr <= LS'(sj);
                        sb_wdata <= sc_s;
                        for (int n = 0; n < NQ; n++)
                            if (svis[n] && (!seen[n] || fgt(sc_s[32*n +: 32], smax[32*n +: 32]))) begin
                                smax[32*n +: 32] <= sc_s[32*n +: 32];
                                seen[n] <= 1'b1;
                            end
                        sj <= sj + 32'd1;
                    end
                    if (sj == sk && !sb_we) begin   // the last score is in SBUF before pass 2 reads
                        p2j <= '0;
                        p2n <= '0;
                        p2_v1 <= 1'b0;
                        soj <= '0;
                        amax <= '0;
                        den <= '0;
                        cs <= C2_P2;
                    end
                end
                C2_P2: begin
                    p2_v1 <= p2j != sk;
                    p2n1 <= p2n;
                    p2l1 <= p2_last;
                    vis1 <= p2j <= q_pos[p2n];
                    if (p2j != sk) begin
                        if (p2_last) begin
                            p2n <= '0;
                            p2j <= p2j + 32'd1;
                        end else p2n <= p2n + 1'b1;
                    end
                    if (so_iv) begin
                        if (fgt(so_ia, amax[32*so_il +: 32])) amax[32*so_il +: 32] <= so_ia;
                        den[48*so_il +: 48] <= den[48*so_il +: 48] + 48'(so_ie);
                    end
                    if (so_valid) begin
                        sb_we <= 1'b1;
                        sb_waddr <= LS'(soj);
                        sb_wdata <= so_a;
                        soj <= soj + 32'd1;
                    end
                    if (soj == sk) begin
                        cn <= '0;
                        scl_start <= 1'b1;
                        scl_fop <= 1'b0;
                        cs <= C2_SC;
                    end
                end
                C2_SC: if (scl_done) begin
                    q_mult[cn[LNQ-1:0]] <= scl_mult;
                    if (cn + 1'b1 == ns) cs <= C2_P3W;
                    else begin
                        cn <= cn + 1'b1;
                        scl_start <= 1'b1;
                    end
                end
                C2_P3W: if (oe_st == OE_IDLE) begin   // the previous set's outputs are out of vacc
                    f_run <= 1'b1;
                    fn <= '0;
                    scl_start <= 1'b1;
                    scl_fop <= 1'b1;
                    wgj <= '0;
                    wgn <= '0;
                    wg_v1 <= 1'b0;
                    wg_fly <= '0;
                    vj <= '0;
                    vb <= '0;
                    vl <= '0;
                    p3_drain <= '0;
                    cs <= C2_P3;
                end
                C2_P3: begin
                    wg_v1 <= wg_iss;
                    wgn1 <= wgn;
                    wgl1 <= wg_last;
                    if (wg_iss) begin
                        if (wg_last) begin
                            wgn <= '0;
                            wgj <= wgj + 32'd1;
                        end else wgn <= wgn + 1'b1;
                    end
                    wg_fly <= wg_fly + 6'(wg_iss && wgn == '0) - 6'(wg_valid);
                    if (p3_take && KVP > 1) vl <= vl_last ? '0 : vl + 1'b1;
                    if (p3_take && vl_last) begin
                        if (vb_last) begin
                            vb <= '0;
                            vj <= vj + 32'd1;
                        end else vb <= vb + 1'b1;
                    end
                    if (vj == sk) begin
                        if (p3_drain != 3'd3) p3_drain <= p3_drain + 3'd1;
                        else if (!f_run) begin
                            // the set's sums are complete: its outputs go to the output engine
                            oe_st <= OE_CONV;
                            oe_n <= '0;
                            oe_ns <= ns;
                            oc_k <= '0;
                            oc_wk <= '0;
                            for (int n = 0; n < NQ; n++) begin
                                oe_f[n] <= q_f[n];
                                oe_t[n] <= q_t[n];
                                oe_h[n] <= q_h[n];
                            end
                            cs <= C2_NEXT;
                        end
                    end
                end
                C2_NEXT: begin
                    if (PREP && pr_st != PR_IDLE) begin
                        // the next set is walked and quantized: straight to its key stream
                        if (pr_st == PR_RDY) begin
                            for (int n = 0; n < NQ; n++) begin
                                q_t[n] <= nq_t[n];
                                q_h[n] <= nq_h[n];
                                q_pos[n] <= nq_pos[n];
                                q_dq[n] <= nq_dq[n];
                            end
                            ns <= n_ns;
                            sk <= n_sk;
                            kj <= '0;
                            kb <= '0;
                            sj <= '0;
                            seen <= '0;
                            pr_st <= PR_IDLE;
                            cs <= C2_P1;
                        end
                    end else if (ct != nt) begin
                        sn <= '0;
                        ns <= '0;
                        cs <= C2_SET;
                    end else if (cg + 16'd1 != nkv) begin
                        cg <= cg + 16'd1;
                        cgh <= cgh + rg;
                        ct <= '0;
                        ci <= '0;
                        cgbase <= cgbase + 40'(blockb);
                        sn <= '0;
                        ns <= '0;
                        cs <= C2_SET;
                    end else cs <= C_FIN;
                end
                C_FIN: if (oe_st == OE_IDLE && !wj_busy && !wj_start && !wr_busy) begin
                    done <= 1'b1;
                    cs <= C_IDLE;
                end
                C_ABORT: if (!rd_busy && !wr_busy && !(KVP > 1 && kv_busy)) begin
                    done <= 1'b1;
                    cs <= C_IDLE;
                end
                default: cs <= C_IDLE;
            endcase
        end
    end

    // SBUF read address: pass 2 issues p2j, pass 3 issues wgj
    assign sb_raddr = cs == C2_P3 ? LS'(wgj) : LS'(p2j);

    // the K and V rows from the quantizer (phase 1)
    always_ff @(posedge clk) begin
        if (qz_we && cs == C1_KV) begin
            if (!c1v) kbuf[qz_addr] <= qz_data;
            else vbuf[qz_addr] <= qz_data;
        end
    end

    wire unused = &{1'b0, prog_base, prog_size, n_regions, wgt_base, wgt_size, af_in_ready, instr[15:0],
                     fpend[3], kv_cmd_ready, kv_valid, kv_data, kv_busy, kv_err, kv_err_resp};   // (the last entry is the one left when no other is pending)
endmodule
