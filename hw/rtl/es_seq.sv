// Sequencer: executes the compiler's program.bin (docs/program.md, version 2) from DDR, as
// docs/registers.md ("Running program.bin", "Memory layouts") specifies.
//
// START latches PC and NTOK and fetches the 64-byte header (PROG_SIZE < 64, magic, version,
// instruction size: ERR HEADER; config ID and G/CB/T/Q: ERR CONFIG; instruction table outside
// PROG_SIZE: ERR RANGE), then executes instructions from PC (PC >= #instructions: ERR PROG_END):
//   LOAD_ACT     latches the q buffer and klen (buffer index: ERR RANGE; k0 != 0: ERR FIELD)
//   BUILD_TABLE  f0 must be G (the tables are built by the engine per token tile)
//   TLMM         collects the DEQUANT instructions that follow (1..4 members), fetches its region
//                entry, the members' beta region entries and the buffer-map entries of q, scale and
//                the members' dst buffers (back-to-back commands on the program reader; entries at
//                consecutive indices in one command), checks them all, then runs the fused linear
//                over token tiles of MAXTOK tokens: per tile one engine command and its streams
//                (activations: scale beats then q beats; weights: the region; beta and results: one
//                command per member, in member order; a beta or result unit is Q float32, Q*4/16
//                bus beats), waiting for every stream and write response before the next tile.
//                Anything wrong with a fused linear is reported at its TLMM (ERR_INFO: TLMM for the
//                instruction and its region, DEQUANT for the members, the buffer-map entries and the
//                beta regions), in the order of the cpu model (host/devices/cpu.py).
//   EMBED NORM_QUANT ROPE ACT_MUL ADD (UNITS bit 0; ACT_MUL without the SwiGLU flag)  -> es_vec
//   ATTENTION (UNITS bit 1)                                                          -> es_attn
//   LAST_ROW (bit 0), OUTPUT with F_ARGMAX (bit 2)                                    -> es_row
//                pulse go with the 32-byte instruction, wait for done (docs/units.md); a unit's error
//                stops the run at that instruction (ERR_CODE = its code | index << 16, ERR_INFO its
//                info). LAST_ROW copies the last token's row of NTOK (the run's) tokens; from then on
//                the run works on one token (NTOK_eff = 1; POS unchanged). OUTPUT without F_ARGMAX is
//                nothing to do when the argmax is built (the host reads the logits after END).
//   END          STATUS.DONE;  an instruction no unit of this build runs (a unit absent, SwiGLU):
//                STATUS.HOST at it.
// K-tiled linears (K > MAXK: LOAD_ACT/BUILD_TABLE/TLMM per K tile, the DEQUANTs after the last; docs/
// registers.md "K tiles"): a TLMM followed by the LOAD_ACT of the next tile (k0 = this k0 + klen) keeps
// its sums in the engine's K-tile accumulator (KROWS rows x MAXTOK tokens), a TLMM with F_ACCUMULATE
// adds them; the tile's activations are the columns k0.. of each token's row of the q buffer (k0 a
// whole number of bus beats: every tile but the last has klen a multiple of G*SPB). The accumulator
// holds one token tile, so a K-tiled linear runs token tile by token tile: after its last tile the
// sequencer goes back to the linear's first LOAD_ACT for the next MAXTOK tokens. A K-tiled linear it
// cannot run (KROWS = 0, more rows than KROWS, a tile not ending on a beat, tiles that do not follow on
// in K) stops with STATUS.HOST at the linear's first LOAD_ACT when UNITS != 0 (the host runs it), else
// ERR FIELD, as before.
//   DEQUANT outside a TLMM or an unknown opcode: ERR OPCODE.
// STOP_PC = the instruction the run stopped at; `retire` counts LOAD_ACT, BUILD_TABLE, TLMM and its
// members (once the linear is done) for INSTR_COUNT.
// Instructions are fetched LINE at a time into a small line buffer (a segment LOAD_ACT..DEQUANTs and
// the host instruction after it usually come in one burst). The first line of a run is requested
// right behind the header, at the instruction offset and count of the last header that passed (if
// that line lies inside PROG_SIZE): when the new header agrees, the line is used, else it is dropped
// and fetched again; so a run usually starts its streams after two read latencies (header + line,
// then the TLMM's entries) instead of three.
// Any fault (ERR_* codes) aborts every stream: the read masters drop data until nothing is in
// flight, the write master finishes a started burst with empty strobes, the engine is held in reset;
// then the sequencer is idle with STATUS.ERROR and ERR_CODE/ERR_INFO set. SOFT_RESET does the same from
// any state and clears the status.
module es_seq #(
    parameter logic [63:0] CONFIG_ID = es_regs_pkg::ES_CONFIG_ID,
    parameter int G = es_regs_pkg::ES_G,
    parameter int T = es_regs_pkg::ES_T,
    parameter int Q = es_regs_pkg::ES_Q,
    parameter int MAXK = es_regs_pkg::ES_MAXK,
    parameter int MAXTOK = es_regs_pkg::ES_MAXTOK,
    parameter int SPB = 2,            // activation group slots per bus beat
    parameter int LINE = 8,           // instructions per line fetch (power of two)
    parameter int WP = 1,             // weight ports: a TLMM region is WP stripes, one per port
    parameter int KROWS = es_regs_pkg::ES_KROWS,   // rows of a K-tiled linear the engine accumulates (0: none)
    parameter int INT_DENSE = 0,      // the engine runs int-dense regions (tlmm_engine INT_DENSE; HW_UNITS bit 4)
    parameter logic [2:0] UNITS = 3'b000   // units behind it: bit 0 es_vec + es_row, 1 es_attn, 2 argmax
) (
    input  logic         clk,
    input  logic         rst_n,
    input  logic         start,
    input  logic         soft_reset,
    input  logic [39:0]  prog_base,
    input  logic [31:0]  prog_size,
    input  logic [31:0]  pc_start,
    input  logic [31:0]  ntok_in,
    input  logic [31:0]  pos_in,
    input  logic [39:0]  wgt_base,
    input  logic [31:0]  wgt_size,
    input  logic [39:0]  act_base,
    input  logic [31:0]  act_size,
    // program / map stream
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
    output logic [31:0]  w_cmd_stride,  // bytes from one stripe to the next (WP > 1)
    input  logic         w_busy,
    input  logic         w_err,
    input  logic [1:0]   w_err_resp,
    // beta reader
    output logic         b_cmd_valid,
    input  logic         b_cmd_ready,
    output logic [39:0]  b_cmd_addr,
    output logic [31:0]  b_cmd_beats,
    input  logic         b_busy,
    input  logic         b_err,
    input  logic [1:0]   b_err_resp,
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
    // units (docs/units.md): one go per dispatch, one done back (from the unit that ran)
    output logic         go_vec,
    output logic         go_attn,
    output logic         go_row,
    output logic [255:0] u_instr,
    output logic [31:0]  u_nregions,
    output logic [31:0]  u_nbuffers,
    output logic [15:0]  u_ntok,
    output logic [31:0]  u_pos,
    input  logic         u_done,
    input  logic [7:0]   u_err_code,
    input  logic [31:0]  u_err_info,
    input  logic         u_idle,        // every unit and its masters idle
    // everything stops
    /* verilator lint_off SYMRSVDWORD */   // 'abort' is a C library name, harmless as a port
    output logic         abort,
    /* verilator lint_on SYMRSVDWORD */
    // status
    output logic         st_busy,
    output logic         st_done,
    output logic         st_host,
    output logic         st_error,
    output logic         st_resetting,
    output logic [31:0]  err_code,
    output logic [31:0]  err_info,
    output logic [31:0]  stop_pc,
    output logic [2:0]   retire        // instructions completed this cycle (INSTR_COUNT)
);
    localparam int LT = $clog2(T);
    localparam int LQ = $clog2(Q);
    localparam int LU = $clog2(4 * Q);  // bytes of a result / beta unit (Q float32), log2
    localparam int LR = LU - 4;        // bus beats of a unit, log2 (Q*4 is a multiple of 16)
    localparam int LS = $clog2(SPB);
    localparam int LL = $clog2(LINE);
    localparam int CB = $clog2(3 ** G);
    localparam int LWP = $clog2(WP);
    localparam int MT = MAXTOK;
    localparam logic [31:0] GEOM = {8'(Q), 8'(T), 8'(CB), 8'(G)};
    localparam longint RECIP = ((64'd1 << 24) + 64'(G) - 64'd1) / 64'(G);   // ceil(2**24 / G)
    localparam int NM = 4;             // DEQUANT members per TLMM

    typedef enum logic [4:0] {
        S_IDLE, S_HDR, S_HCHK, S_DROP, S_EXEC, S_LINE, S_SCAN, S_MFETCH, S_C3, S_CM,
        S_TILE, S_RUN, S_STOP, S_FAIL, S_RESET, S_UNIT
    } state_t;
    state_t state;

    // ---------------- run state
    logic [31:0] pc, ntok, pos;
    logic [15:0] ntok_run;         // NTOK of the run (LAST_ROW's source rows)
    logic [31:0] h_magic, h_geo, nr, nb, ni, ioff;
    logic [15:0] h_ver, h_isz;
    logic [63:0] h_cid;
    logic        p_sent;           // the single command of S_LINE was accepted
    logic [1:0]  hk;               // S_HDR: commands accepted (header, speculative first line)
    logic        spec;             // this run requested its first line behind the header
    logic        sp_valid;         // the last header that passed: instruction offset and count
    logic [31:0] sp_ioff, sp_ni;
    logic [5:0]  spec_beats;
    logic [3:0]  pbeat;            // beats consumed in S_HDR / S_LINE
    logic        stop_host;
    logic [7:0]  fail_code;
    logic [31:0] fail_info, fail_pc;

    // ---------------- instruction line buffer
    logic [7:0]  ib_op [LINE];
    logic [7:0]  ib_fl [LINE];
    logic [15:0] ib_a [LINE];
    logic [31:0] ib_f0 [LINE];
    logic [31:0] ib_f1 [LINE];
    logic [31:0] ib_f2 [LINE];
    logic [31:0] ib_f3 [LINE];
    logic [95:0] ib_f46 [LINE];    // f4..f6 (ATTENTION's shape)
    logic [31:0] line_base, pc_f;
    logic [LL:0] line_cnt, line_n;
    logic        ret_scan;

    // ---------------- LOAD_ACT / BUILD_TABLE / TLMM / members
    logic        have_load, have_build;
    logic [15:0] q_idx;
    logic [31:0] klen;
    logic [15:0] tl_a;
    logic        tl_bs;
    logic [3:0]  tl_bits;
    logic [23:0] tl_rows;
    logic [2:0]  nm, mi;
    logic [24:0] colsum;
    logic        pend;             // a member failed its field checks (reported after the region's)
    logic [31:0] s_idx_buf;
    logic [15:0] m_dst [NM];
    logic [31:0] m_cols [NM];
    logic [31:0] m_beta [NM];
    logic [22:0] m_rb [NM];

    // ---------------- fetched entries
    logic [3:0]  mk, ci;           // S_MFETCH: commands issued, item being consumed
    logic [1:0]  bi;               // beat of the item
    logic [63:0] r_off, r_nbytes;
    logic [7:0]  r_kind, r_bits;
    logic [15:0] r_str;            // the region's stripes (0: one)
    logic [31:0] r_n, r_k;
    logic [63:0] bt_off [NM];
    logic [63:0] bt_nbytes [NM];
    logic [7:0]  bt_kind [NM];
    logic [31:0] qm_off, qm_cap, qm_w, sm_off, sm_cap;
    logic [7:0]  qm_dt, sm_dt;
    logic [31:0] dm_off [NM];
    logic [31:0] dm_cap [NM];
    logic [31:0] dm_w [NM];
    logic [7:0]  dm_dt [NM];

    // ---------------- geometry and tiles
    // integer weights of an int-dense region (INT_DENSE builds): G column planes of int8 per row batch
    // and chunk instead of `bits` bit planes (tlmm_engine.sv, command bit 55); r_kind is fetched in
    // S_MFETCH, and planes/rp/wbytes below settle during its wait before S_C3 reads them
    wire         dense = INT_DENSE != 0 && tl_bs && r_kind == es_regs_pkg::ES_RK_INT_DENSE;
    logic [15:0] groups, chunks, abt;
    logic [22:0] rb;
    logic [3:0]  planes;
    logic [26:0] rp;
    logic [63:0] wbytes, q_touch, s_touch;
    logic [31:0] q_step;
    logic [31:0] rem_tok, a_sptr, a_qptr, q_beats;
    logic [31:0] r_ptr [NM];
    logic [31:0] r_step [NM];
    logic [31:0] r_beats [NM];
    logic [4:0]  a_i;              // activation commands accepted: 0 the scales, then the q rows
    logic [31:0] a_qcur;
    logic [2:0]  b_i, r_i;
    logic        sent_w, sent_e;

    // ---------------- current instruction (line buffer read)
    wire  [31:0] sidx = pc + 32'(nm) + 32'd1;               // member scan position
    wire  [31:0] cidx = state == S_SCAN ? sidx : pc;
    wire  [31:0] coff = cidx - line_base;
    wire         hit = line_cnt != '0 && cidx >= line_base && coff < 32'(line_cnt);
    wire  [LL-1:0] cslot = coff[LL-1:0];
    wire  [7:0]  e_op = ib_op[cslot];
    wire  [7:0]  e_fl = ib_fl[cslot];
    wire  [15:0] e_a = ib_a[cslot];
    wire  [31:0] e_f0 = ib_f0[cslot];
    wire  [31:0] e_f1 = ib_f1[cslot];
    wire  [31:0] e_f2 = ib_f2[cslot];
    wire  [31:0] e_f3 = ib_f3[cslot];
    wire  [95:0] e_f46 = ib_f46[cslot];
    wire         e_host = e_op == es_regs_pkg::ES_OP_EMBED || e_op == es_regs_pkg::ES_OP_NORM_QUANT || e_op == es_regs_pkg::ES_OP_ROPE
                          || e_op == es_regs_pkg::ES_OP_ATTENTION || e_op == es_regs_pkg::ES_OP_ACT_MUL || e_op == es_regs_pkg::ES_OP_ADD
                          || e_op == es_regs_pkg::ES_OP_LAST_ROW || e_op == es_regs_pkg::ES_OP_OUTPUT;
    // which unit of this build runs the instruction (none: the host does)
    localparam logic [7:0] F_SILU = 8'd1, F_ARGMAX = 8'd1;   // edgestream/program.py (not in es_regs_pkg)
    wire         e_vec = UNITS[0] && (e_op == es_regs_pkg::ES_OP_EMBED || e_op == es_regs_pkg::ES_OP_NORM_QUANT
                                      || e_op == es_regs_pkg::ES_OP_ROPE || e_op == es_regs_pkg::ES_OP_ADD
                                      || (e_op == es_regs_pkg::ES_OP_ACT_MUL && (e_fl & F_SILU) == 8'd0));
    wire         e_attn = UNITS[1] && e_op == es_regs_pkg::ES_OP_ATTENTION;
    wire         e_argmax = e_op == es_regs_pkg::ES_OP_OUTPUT && (e_fl & F_ARGMAX) != 8'd0;
    wire         e_row = (UNITS[0] && e_op == es_regs_pkg::ES_OP_LAST_ROW) || (UNITS[2] && e_argmax);
    wire         e_nop = UNITS[2] && e_op == es_regs_pkg::ES_OP_OUTPUT && !e_argmax;
    localparam bit KHOST = UNITS != 3'b000;   // K-tiled linears stop for the host (else ERR FIELD)
    logic [31:0] load_pc;          // the LOAD_ACT of the current linear
    logic        nxt_load;         // the TLMM is followed by a LOAD_ACT (the next K tile), not DEQUANTs
    logic [31:0] nxt_k0;           // that LOAD_ACT's k0
    logic        kt_open;          // the engine's K-tile accumulator holds this linear's tiles so far
    logic [31:0] kt_next;          // the k0 the next tile must start at
    logic [15:0] kt_boff;          // its first beat in a token's row of the q buffer
    logic [23:0] kt_rows;          // the linear's rows
    logic [31:0] k0_cur;           // the current LOAD_ACT's k0
    logic [15:0] boff;             // the current tile's first beat in a token's row
    logic [15:0] tt;               // the token tile a K-tiled linear is on
    logic        tl_acc;           // the current TLMM adds the accumulator (F_ACCUMULATE)
    logic [2:0]  wt;               // S_MFETCH: cycles waited for the q buffer's geometry
    logic [15:0] groups_w, abt_w;  // groups and beats of a token's whole row of the q buffer
    logic [31:0] t_q;              // token tile tt's offset in the q buffer
    logic [31:0] t_r [NM];         // and in each member's dst
    logic        u_last;           // the unit running is es_row with LAST_ROW
    wire         scan_dq = hit && e_op == es_regs_pkg::ES_OP_DEQUANT;
    wire         m_bad = (e_fl & 8'(es_regs_pkg::ES_F_PER_CHANNEL)) == 8'd0 || e_f0 != 32'(colsum)
                         || e_f0[LQ-1:0] != '0 || e_f1 == 32'd0 || 33'(colsum) + 33'(e_f1) > 33'(tl_rows)
                         || (nm != 3'd0 && e_f2 != s_idx_buf);
    wire         scan_end = sidx >= ni || (hit && (!scan_dq || nm == 3'(NM) || m_bad));
    // K tiles: a TLMM with F_ACCUMULATE continues the open linear (same rows); a TLMM without members
    // followed by the next tile's LOAD_ACT keeps its sums when the accumulator holds its rows and the
    // tile ends on a bus beat of the q rows (klen a multiple of G*SPB)
    wire         acc_ok = kt_open && e_f0 == 32'(kt_rows);
    // (registered: its inputs hold from the member scan to the end of the TLMM, and S_C3 comes at least
    // five cycles after the scan, so the compares stay off the stream-control paths)
    logic        keep_ok;
    wire         keep = nm == 3'd0 && !pend && keep_ok;
    wire  [32:0] kend = 33'(k0_cur) + 33'(klen);
    // the q buffer's width: the last (or only) tile ends its row, an earlier one lies inside it
    wire         q_w_bad = qm_w[31:16] != 16'd0 || (keep ? 33'(qm_w) <= kend : 33'(qm_w) != kend);

    // a buffer-map index that cannot be fetched (ERR RANGE)
    function automatic bad_map_idx(input [31:0] i, input [31:0] nbuf, input [31:0] asz);
        bad_map_idx = i >= nbuf || (33'(i) + 33'd1) * 33'd16 > 33'(asz);
    endfunction
    // a region entry past the region table or PROG_SIZE (ERR RANGE)
    function automatic bad_reg_idx(input [31:0] i, input [31:0] nreg, input [31:0] psz);
        bad_reg_idx = i >= nreg
                      || 64'(es_regs_pkg::ES_PROG_HEADER_BYTES) + (64'(i) + 64'd1) * 64'(es_regs_pkg::ES_PROG_REGION_BYTES)
                         > 64'(psz);
    endfunction
    // a buffer-map entry outside the arena or smaller than what the run touches (ERR RANGE)
    function automatic bad_map(input [31:0] off, input [31:0] cap, input [63:0] touch, input [31:0] asz);
        bad_map = off[3:0] != 4'd0 || 33'(off) + 33'(cap) > 33'(asz) || touch > 64'(cap);
    endfunction
    // a weight-image region that does not hold `bytes` bytes inside WGT_SIZE (ERR RANGE)
    function automatic bad_region(input [63:0] off, input [63:0] nbytes, input [63:0] bytes, input [31:0] wsz);
        bad_region = off[3:0] != 4'd0 || off[63:32] != 32'd0 || bytes > nbytes || off + bytes > 64'(wsz);
    endfunction

    // a TLMM region of WP stripes, each `bytes` long at a stride of nbytes / WP (16-aligned), that does
    // not lie inside its nbytes and WGT_SIZE (ERR RANGE); WP = 1: the whole region, as bad_region
    wire  [63:0] w_stride = (r_nbytes >> LWP) & ~64'hF;
    function automatic bad_wregion(input [63:0] off, input [63:0] stride, input [63:0] bytes, input [31:0] wsz);
        bad_wregion = off[3:0] != 4'd0 || off[63:32] != 32'd0 || bytes > stride
                      || off + 64'(WP - 1) * stride + bytes > 64'(wsz);
    endfunction

    // ---------------- checks of the current state (first failing one wins)
    logic [7:0]  ck_code;
    logic [31:0] ck_pc, ck_info;
    wire  [1:0]  mj = mi[1:0];
    wire  [31:0] ntok4 = (ntok + 32'd3) >> 2;
    wire  [31:0] ntiles = (ntok + 32'(MT - 1)) / 32'(MT);
    wire  [63:0] d_need = 64'(m_rb[mj]) * 64'(ntiles) * 64'(MT * 4 * Q);   // the tile layout's bytes
    always_comb begin
        ck_code = es_regs_pkg::ES_ERR_NONE;
        ck_pc = pc;
        ck_info = 32'd0;
        case (state)
            S_IDLE: begin
                ck_pc = pc_start;
                if (prog_size < 32'(es_regs_pkg::ES_PROG_HEADER_BYTES)) ck_code = es_regs_pkg::ES_ERR_HEADER;
                else if (prog_base[3:0] != 4'd0 || wgt_base[3:0] != 4'd0 || act_base[3:0] != 4'd0)
                    ck_code = es_regs_pkg::ES_ERR_RANGE;
            end
            S_HCHK: begin
                if (h_magic != es_regs_pkg::ES_PROG_MAGIC || h_ver != 16'(es_regs_pkg::ES_PROG_VERSION) || h_isz != 16'(es_regs_pkg::ES_PROG_INSTR_BYTES))
                    ck_code = es_regs_pkg::ES_ERR_HEADER;
                else if (h_cid != CONFIG_ID || h_geo != GEOM)
                    ck_code = es_regs_pkg::ES_ERR_CONFIG;
                else if (ioff[3:0] != 4'd0
                         || 64'(ioff) + 64'(ni) * 64'(es_regs_pkg::ES_PROG_INSTR_BYTES) > 64'(prog_size))
                    ck_code = es_regs_pkg::ES_ERR_RANGE;
            end
            S_EXEC: begin
                ck_info = {24'd0, e_op};
                if (pc >= ni) begin
                    ck_code = es_regs_pkg::ES_ERR_PROG_END;
                    ck_info = 32'd0;
                end else if (hit) begin
                    if (e_op == es_regs_pkg::ES_OP_LOAD_ACT) begin
                        if (32'(e_a) >= nb) ck_code = es_regs_pkg::ES_ERR_RANGE;
                        else if (e_f0 != 32'd0 && !KHOST && !(kt_open && e_f0 == kt_next)) ck_code = es_regs_pkg::ES_ERR_FIELD;
                    end else if (e_op == es_regs_pkg::ES_OP_BUILD_TABLE) begin
                        if (e_f0 != 32'(G)) ck_code = es_regs_pkg::ES_ERR_FIELD;
                    end else if (e_op == es_regs_pkg::ES_OP_TLMM) begin
                        if (!have_load || !have_build)
                            ck_code = es_regs_pkg::ES_ERR_FIELD;
                        else if ((e_fl & 8'(es_regs_pkg::ES_F_ACCUMULATE)) != 8'd0 && !acc_ok) begin
                            if (!KHOST) ck_code = es_regs_pkg::ES_ERR_FIELD;
                        end else if (bad_reg_idx(32'(e_a), nr, prog_size))
                            ck_code = es_regs_pkg::ES_ERR_RANGE;
                        else if (ntok == 32'd0 || ntok > 32'd65535 || klen == 32'd0 || klen > 32'(MAXK)
                                 || ((e_fl & 8'(es_regs_pkg::ES_F_BITSERIAL)) != 8'd0 && (e_f2 < 32'd2 || e_f2 > 32'd8))
                                 || e_f0 == 32'd0 || e_f0 > 32'h00ff_ffff)
                            ck_code = es_regs_pkg::ES_ERR_FIELD;
                    end else if (e_op == es_regs_pkg::ES_OP_END || e_host) begin
                        ck_code = es_regs_pkg::ES_ERR_NONE;
                    end else begin
                        ck_code = es_regs_pkg::ES_ERR_OPCODE;   // a stray DEQUANT or an unknown opcode
                    end
                end
            end
            S_C3: begin
                // everything about a fused linear is reported at its TLMM (as the cpu model does)
                ck_info = {24'd0, es_regs_pkg::ES_OP_TLMM};
                if ((r_kind != (tl_bs ? es_regs_pkg::ES_RK_INT_PLANES : es_regs_pkg::ES_RK_TERNARY_GINDEX) && !dense)
                    || (tl_bs && r_bits != 8'(tl_bits)) || r_n != 32'(tl_rows) || r_k != klen
                    || (r_str == 16'd0 ? 16'd1 : r_str) != 16'(WP)) begin
                    ck_code = es_regs_pkg::ES_ERR_FIELD;
                end else if (bad_wregion(r_off, w_stride, wbytes, wgt_size)) begin
                    ck_code = es_regs_pkg::ES_ERR_RANGE;
                end else if (nm == 3'd0 && !pend) begin
                    if (!keep_ok) begin
                        if (!(KHOST && nxt_load)) ck_code = es_regs_pkg::ES_ERR_FIELD;
                    end else begin
                        // a K tile before the last: its q buffer (as a member's map entries: DEQUANT)
                        ck_info = {24'd0, es_regs_pkg::ES_OP_DEQUANT};
                        if (bad_map_idx(32'(q_idx), nb, act_size)) ck_code = es_regs_pkg::ES_ERR_RANGE;
                        else if (qm_dt != es_regs_pkg::ES_B_I8 || q_w_bad) ck_code = es_regs_pkg::ES_ERR_FIELD;
                        else if (bad_map(qm_off, qm_cap, q_touch, act_size)) ck_code = es_regs_pkg::ES_ERR_RANGE;
                    end
                end else begin
                    ck_info = {24'd0, es_regs_pkg::ES_OP_DEQUANT};
                    if (pend || 32'(colsum) != 32'(tl_rows)) ck_code = es_regs_pkg::ES_ERR_FIELD;
                    else if (bad_map_idx(32'(q_idx), nb, act_size)) ck_code = es_regs_pkg::ES_ERR_RANGE;
                    else if (qm_dt != es_regs_pkg::ES_B_I8 || q_w_bad) ck_code = es_regs_pkg::ES_ERR_FIELD;
                    else if (bad_map(qm_off, qm_cap, q_touch, act_size)) ck_code = es_regs_pkg::ES_ERR_RANGE;
                    else if (bad_map_idx(s_idx_buf, nb, act_size)) ck_code = es_regs_pkg::ES_ERR_RANGE;
                    else if (sm_dt != es_regs_pkg::ES_B_SCALE) ck_code = es_regs_pkg::ES_ERR_FIELD;
                    else if (bad_map(sm_off, sm_cap, s_touch, act_size)) ck_code = es_regs_pkg::ES_ERR_RANGE;
                end
            end
            S_CM: begin
                ck_info = {24'd0, es_regs_pkg::ES_OP_DEQUANT};
                if (bad_map_idx(32'(m_dst[mj]), nb, act_size)) ck_code = es_regs_pkg::ES_ERR_RANGE;
                else if (dm_dt[mj] != es_regs_pkg::ES_B_F32 || dm_w[mj] != m_cols[mj]) ck_code = es_regs_pkg::ES_ERR_FIELD;
                else if (bad_map(dm_off[mj], dm_cap[mj], d_need, act_size)) ck_code = es_regs_pkg::ES_ERR_RANGE;
                else if (bad_reg_idx(m_beta[mj], nr, prog_size)) ck_code = es_regs_pkg::ES_ERR_RANGE;
                else if (bt_kind[mj] != es_regs_pkg::ES_RK_F32) ck_code = es_regs_pkg::ES_ERR_FIELD;
                else if (bad_region(bt_off[mj], bt_nbytes[mj], 64'(m_rb[mj]) << LU, wgt_size))
                    ck_code = es_regs_pkg::ES_ERR_RANGE;
            end
            default: ;
        endcase
    end

    // ---------------- program reader commands
    // S_MFETCH items: 0 TLMM region, 1..nm member beta regions, nm+1 q map, nm+2 scale map, nm+3.. dst maps.
    // Items of one kind at consecutive indices (the compiler's usual TLMM region followed by its betas,
    // q and scale then the dst buffers) go out as one command.
    wire [3:0] n_items = nm == 3'd0 ? 4'd2 : {nm, 1'b0} + 4'd3;   // no members: no scale map (a K tile)
    logic        it_region, k_region, it_ok, k_ok, ci_region, ci_ok;
    logic [31:0] it_idx, k_idx, ci_idx;
    logic [3:0]  it_run, k;
    logic        run_brk;
    always_comb begin
        it_region = mk <= 4'(nm);
        if (mk == 4'd0) it_idx = 32'(tl_a);
        else if (mk <= 4'(nm)) it_idx = m_beta[2'(mk - 4'd1)];
        else if (mk == 4'(nm) + 4'd1) it_idx = 32'(q_idx);
        else if (mk == 4'(nm) + 4'd2) it_idx = s_idx_buf;
        else it_idx = 32'(m_dst[2'(mk - 4'(nm) - 4'd3)]);
        // an entry whose index is out of range is not fetched (reported in S_C3 / S_CM, in order)
        it_ok = it_region ? !bad_reg_idx(it_idx, nr, prog_size) : !bad_map_idx(it_idx, nb, act_size);
        ci_region = ci <= 4'(nm);
        if (ci == 4'd0) ci_idx = 32'(tl_a);
        else if (ci <= 4'(nm)) ci_idx = m_beta[2'(ci - 4'd1)];
        else if (ci == 4'(nm) + 4'd1) ci_idx = 32'(q_idx);
        else if (ci == 4'(nm) + 4'd2) ci_idx = s_idx_buf;
        else ci_idx = 32'(m_dst[2'(ci - 4'(nm) - 4'd3)]);
        ci_ok = ci_region ? !bad_reg_idx(ci_idx, nr, prog_size) : !bad_map_idx(ci_idx, nb, act_size);
        it_run = 4'd1;
        run_brk = 1'b0;
        for (int j = 1; j < 6; j++) begin
            k = mk + 4'(j);
            k_region = k <= 4'(nm);
            if (k <= 4'(nm)) k_idx = m_beta[2'(k - 4'd1)];
            else if (k == 4'(nm) + 4'd1) k_idx = 32'(q_idx);
            else if (k == 4'(nm) + 4'd2) k_idx = s_idx_buf;
            else k_idx = 32'(m_dst[2'(k - 4'(nm) - 4'd3)]);
            k_ok = k_region ? !bad_reg_idx(k_idx, nr, prog_size) : !bad_map_idx(k_idx, nb, act_size);
            if (!run_brk && k < n_items && k_region == it_region && k_idx == it_idx + 32'(j) && k_ok)
                it_run = it_run + 4'd1;
            else run_brk = 1'b1;
        end
    end
    wire [31:0] line_left = (state == S_HDR ? sp_ni : ni) - pc_f;
    wire [31:0] sp_left = sp_ni - pc_start;
    wire [LL:0] sp_n = sp_left > 32'(LINE) ? (LL + 1)'(LINE) : sp_left[LL:0];
    assign line_n = line_left > 32'(LINE) ? (LL + 1)'(LINE) : line_left[LL:0];

    always_comb begin
        p_cmd_valid = 1'b0;
        p_cmd_addr = prog_base;
        p_cmd_beats = 32'd4;
        case (state)
            S_HDR: begin
                p_cmd_valid = hk == 2'd0 || (hk == 2'd1 && spec);
                if (hk != 2'd0) begin
                    p_cmd_addr = prog_base + 40'(sp_ioff) + (40'(pc_f) << 5);
                    p_cmd_beats = 32'(line_n) << 1;
                end
            end
            S_LINE: begin
                p_cmd_valid = !p_sent;
                p_cmd_addr = prog_base + 40'(ioff) + (40'(pc_f) << 5);
                p_cmd_beats = 32'(line_n) << 1;
            end
            S_MFETCH: begin
                p_cmd_valid = mk != n_items && it_ok;
                p_cmd_addr = it_region ? prog_base + 40'(es_regs_pkg::ES_PROG_HEADER_BYTES) + 40'(it_idx) * 40'(es_regs_pkg::ES_PROG_REGION_BYTES)
                                       : act_base + (40'(it_idx) << 4);
                p_cmd_beats = it_region ? 32'(it_run) * 32'd3 : 32'(it_run);
            end
            default: ;
        endcase
    end
    assign p_ready = state == S_HDR || state == S_DROP || state == S_LINE
                     || (state == S_MFETCH && ci != n_items && ci_ok);

    // ---------------- streams of a tile
    wire [31:0] nt = rem_tok > 32'(MT) ? 32'(MT) : rem_tok;   // tokens of this tile
    wire [31:0] sbeats = (nt + 32'd3) >> 2;
    wire last_tile = rem_tok <= 32'(MT);
    wire per_tok = abt_w != abt;   // a K tile: a command per token (its columns of the token's row)
    wire [4:0] a_end = 5'd1 + (per_tok ? 5'(nt) : 5'd1);
    assign dq_ntok = nt[7:0];
    assign dq_sbeats = keep ? 8'd0 : sbeats[7:0];   // a tile that keeps its sums needs no scales
    assign u_clear = state == S_TILE;
    assign u_groups = groups;
    assign a_cmd_valid = state == S_RUN && a_i != a_end;
    assign a_cmd_addr = act_base + 40'(a_i == 5'd0 ? a_sptr : a_qcur);
    assign a_cmd_beats = a_i == 5'd0 ? sbeats : per_tok ? 32'(abt) : q_beats;
    assign w_cmd_valid = state == S_RUN && !sent_w;
    assign w_cmd_addr = wgt_base + 40'(r_off[31:0]);
    assign w_cmd_beats = wbytes[35:4];
    assign w_cmd_stride = w_stride[31:0];
    assign b_cmd_valid = state == S_RUN && b_i != nm;
    assign b_cmd_addr = wgt_base + 40'(bt_off[b_i[1:0]][31:0]);
    assign b_cmd_beats = 32'(m_rb[b_i[1:0]]) << LR;
    assign r_cmd_valid = state == S_RUN && r_i != nm;
    assign r_cmd_addr = act_base + 40'(r_ptr[r_i[1:0]]);
    assign r_cmd_beats = r_beats[r_i[1:0]];
    assign e_cmd_valid = state == S_RUN && !sent_e;
    assign e_cmd_data = {8'd0, dense, keep, tl_acc, tl_bs, tl_bs ? tl_bits : 4'd1, nt[7:0], tl_rows, klen[15:0]};
    wire tile_issued = a_i == a_end && b_i == nm && r_i == nm && sent_w && sent_e;

    // ---------------- faults, status
    wire any_rd_err = p_err || a_err || w_err || b_err;
    wire [1:0] rd_resp = p_err ? p_err_resp : a_err ? a_err_resp : w_err ? w_err_resp : b_err_resp;
    wire draining = state == S_STOP || state == S_FAIL || state == S_RESET;
    wire all_idle = !p_busy && !a_busy && !w_busy && !r_busy && !b_busy && u_idle;
    wire working = state != S_IDLE && !draining;

    assign abort = draining;
    assign e_reset = state == S_FAIL || state == S_RESET;
    assign st_busy = state != S_IDLE;
    assign st_resetting = state == S_RESET;

    // Geometry of the current TLMM: a three-stage pipeline on the latched instruction fields (klen,
    // rows, bits, NTOK), settled long before its results are used in S_C3 (the member scan and the
    // entry fetch take at least five cycles after the TLMM is decoded).
    always_ff @(posedge clk) begin
        groups <= 16'(((64'(klen[15:0]) + 64'(G - 1)) * 64'(RECIP)) >> 24);
        rb <= 23'((25'(tl_rows) + 25'(Q - 1)) >> LQ);
        planes <= dense ? 4'(G) : tl_bs ? tl_bits : 4'd1;
        chunks <= 16'((32'(groups) + 32'(T - 1)) >> LT);
        abt <= 16'((32'(groups) + 32'(SPB - 1)) >> LS);
        rp <= 27'(rb) * 27'(planes);
        wbytes <= (64'(rp) * 64'(chunks)) << 4;
        // the q buffer's row (its width qm_w: klen, or all of K for a K tile), settled within the wait
        // after the last map entry (S_MFETCH)
        groups_w <= 16'(((64'(qm_w[15:0]) + 64'(G - 1)) * 64'(RECIP)) >> 24);
        abt_w <= 16'((32'(groups_w) + 32'(SPB - 1)) >> LS);
        q_touch <= (64'(ntok[15:0]) * 64'(abt_w)) << 4;
        s_touch <= 64'(ntok4) << 4;
        q_step <= (32'(abt_w) * 32'(MT)) << 4;
        t_q <= 32'(tt) * q_step;
        keep_ok <= KROWS > 0 && nxt_load && nxt_k0 == k0_cur + klen && 32'(groups) * 32'(G) == klen
                   && (groups & 16'(SPB - 1)) == 16'd0 && 32'(tl_rows) <= 32'(KROWS);
        for (int i = 0; i < NM; i++) t_r[i] <= (32'(tt) * 32'(m_rb[i]) * 32'(MT)) << LU;
    end

    assign u_nregions = nr;
    assign u_nbuffers = nb;
    assign u_ntok = u_last ? ntok_run : ntok[15:0];
    assign u_pos = pos;

    always_ff @(posedge clk) begin
        retire <= 3'd0;
        go_vec <= 1'b0;
        go_attn <= 1'b0;
        go_row <= 1'b0;
        if (!rst_n) begin
            state <= S_IDLE;
            st_done <= 1'b0;
            st_host <= 1'b0;
            st_error <= 1'b0;
            err_code <= '0;
            err_info <= '0;
            stop_pc <= '0;
            line_cnt <= '0;
            line_base <= '0;
            sp_valid <= 1'b0;
            fail_code <= '0;
            fail_info <= '0;
            fail_pc <= '0;
        end else if (soft_reset) begin
            state <= S_RESET;
            st_done <= 1'b0;
            st_host <= 1'b0;
            st_error <= 1'b0;
            err_code <= '0;
            err_info <= '0;
            line_cnt <= '0;
            sp_valid <= 1'b0;
        end else if (working && (any_rd_err || r_err)) begin
            state <= S_FAIL;
            fail_code <= any_rd_err ? es_regs_pkg::ES_ERR_AXI_READ : es_regs_pkg::ES_ERR_AXI_WRITE;
            fail_info <= {30'd0, any_rd_err ? rd_resp : r_err_resp};
            fail_pc <= pc;
        end else if (ck_code != es_regs_pkg::ES_ERR_NONE && (state != S_IDLE || start)) begin
            state <= S_FAIL;
            fail_code <= ck_code;
            fail_info <= ck_info;
            fail_pc <= ck_pc;
            if (state == S_HCHK) sp_valid <= 1'b0;
            if (state == S_IDLE) begin
                st_done <= 1'b0;
                st_host <= 1'b0;
                st_error <= 1'b0;
                err_code <= '0;
                err_info <= '0;
            end
        end else begin
            case (state)
                S_IDLE: if (start) begin
                    st_done <= 1'b0;
                    st_host <= 1'b0;
                    st_error <= 1'b0;
                    err_code <= '0;
                    err_info <= '0;
                    pc <= pc_start;
                    ntok <= ntok_in;
                    ntok_run <= ntok_in[15:0];
                    pos <= pos_in;
                    u_last <= 1'b0;
                    line_cnt <= '0;
                    kt_open <= 1'b0;
                    tt <= '0;
                    have_load <= 1'b0;
                    have_build <= 1'b0;
                    hk <= '0;
                    pc_f <= pc_start;
                    spec <= sp_valid && pc_start < sp_ni
                            && 64'(sp_ioff) + 64'(sp_ni) * 64'(es_regs_pkg::ES_PROG_INSTR_BYTES) <= 64'(prog_size);
                    spec_beats <= 6'(sp_n) << 1;
                    pbeat <= '0;
                    state <= S_HDR;
                end
                S_HDR: begin
                    if (p_cmd_valid && p_cmd_ready) hk <= hk + 2'd1;
                    if (p_valid) begin
                        pbeat <= pbeat + 4'd1;
                        case (pbeat[1:0])
                            2'd0: begin
                                h_magic <= p_data[31:0];
                                h_ver <= p_data[47:32];
                                h_isz <= p_data[63:48];
                                nr <= p_data[95:64];
                                nb <= p_data[127:96];
                            end
                            2'd1: begin
                                ni <= p_data[31:0];
                                h_cid <= p_data[127:64];
                            end
                            2'd2: begin
                                h_geo <= p_data[95:64];
                                ioff <= p_data[127:96];
                            end
                            default: state <= S_HCHK;
                        endcase
                    end
                end
                S_HCHK: begin
                    sp_valid <= 1'b1;
                    sp_ioff <= ioff;
                    sp_ni <= ni;
                    pbeat <= '0;
                    if (spec && hk == 2'd2) begin
                        if (ioff == sp_ioff && ni == sp_ni) begin
                            // the line behind the header is the right one
                            p_sent <= 1'b1;
                            ret_scan <= 1'b0;
                            line_cnt <= '0;
                            state <= S_LINE;
                        end else begin
                            state <= S_DROP;
                        end
                    end else begin
                        state <= S_EXEC;
                    end
                end
                S_DROP: if (p_valid) begin
                    pbeat <= pbeat + 4'd1;
                    if (6'(pbeat) + 6'd1 == spec_beats) state <= S_EXEC;
                end
                S_EXEC: begin
                    if (!hit) begin
                        pc_f <= pc;
                        ret_scan <= 1'b0;
                        p_sent <= 1'b0;
                        pbeat <= '0;
                        line_cnt <= '0;
                        state <= S_LINE;
                    end else if (e_op == es_regs_pkg::ES_OP_LOAD_ACT && e_f0 != 32'd0 && !(kt_open && e_f0 == kt_next)) begin
                        stop_host <= 1'b1;      // a K tile that continues no kept one (only reached with KHOST)
                        retire <= 3'd1;         // counted, as the cpu model does
                        state <= S_STOP;
                    end else if (e_op == es_regs_pkg::ES_OP_LOAD_ACT) begin
                        if (e_f0 == 32'd0) load_pc <= pc;
                        k0_cur <= e_f0;
                        boff <= e_f0 == 32'd0 ? 16'd0 : kt_boff;
                        q_idx <= e_a;
                        klen <= e_f1;
                        have_load <= 1'b1;
                        pc <= pc + 32'd1;
                        retire <= 3'd1;
                    end else if (e_op == es_regs_pkg::ES_OP_BUILD_TABLE) begin
                        have_build <= 1'b1;
                        pc <= pc + 32'd1;
                        retire <= 3'd1;
                    end else if (e_op == es_regs_pkg::ES_OP_TLMM && (e_fl & 8'(es_regs_pkg::ES_F_ACCUMULATE)) != 8'd0
                                 && !acc_ok) begin
                        stop_host <= 1'b1;      // a K tile of no kept linear (only reached with KHOST): the host runs it
                        retire <= 3'd1;
                        pc <= load_pc;
                        state <= S_STOP;
                    end else if (e_op == es_regs_pkg::ES_OP_TLMM) begin
                        tl_a <= e_a;
                        tl_bs <= (e_fl & 8'(es_regs_pkg::ES_F_BITSERIAL)) != 8'd0;
                        tl_acc <= (e_fl & 8'(es_regs_pkg::ES_F_ACCUMULATE)) != 8'd0;
                        tl_bits <= e_f2[3:0];
                        tl_rows <= e_f0[23:0];
                        nm <= '0;
                        colsum <= '0;
                        state <= S_SCAN;
                    end else if (e_vec || e_attn || e_row) begin
                        go_vec <= e_vec;
                        go_attn <= e_attn;
                        go_row <= e_row;
                        u_last <= e_op == es_regs_pkg::ES_OP_LAST_ROW;
                        u_instr <= {e_f46, e_f3, e_f2, e_f1, e_f0, e_a, e_fl, e_op};
                        state <= S_UNIT;
                    end else if (e_nop) begin
                        pc <= pc + 32'd1;
                        retire <= 3'd1;
                    end else begin
                        // END or a host instruction (anything else failed its check)
                        stop_host <= e_op != es_regs_pkg::ES_OP_END;
                        state <= S_STOP;
                    end
                end
                S_LINE: begin
                    if (p_cmd_valid && p_cmd_ready) p_sent <= 1'b1;
                    if (p_valid) begin
                        if (!pbeat[0]) begin
                            ib_op[pbeat[LL:1]] <= p_data[7:0];
                            ib_fl[pbeat[LL:1]] <= p_data[15:8];
                            ib_a[pbeat[LL:1]] <= p_data[31:16];
                            ib_f0[pbeat[LL:1]] <= p_data[63:32];
                            ib_f1[pbeat[LL:1]] <= p_data[95:64];
                            ib_f2[pbeat[LL:1]] <= p_data[127:96];
                        end else begin
                            ib_f3[pbeat[LL:1]] <= p_data[31:0];
                            ib_f46[pbeat[LL:1]] <= p_data[127:32];
                        end
                        pbeat <= pbeat + 4'd1;
                        if (pbeat[LL:1] == LL'(line_n - 1'b1) && pbeat[0]) begin
                            line_base <= pc_f;
                            line_cnt <= line_n;
                            state <= ret_scan ? S_SCAN : S_EXEC;
                        end
                    end
                end
                S_SCAN: begin
                    if (scan_end) begin
                        pend <= sidx < ni && scan_dq;
                        nxt_load <= sidx < ni && hit && e_op == es_regs_pkg::ES_OP_LOAD_ACT;
                        nxt_k0 <= e_f0;
                        wt <= '0;
                        mk <= '0;
                        ci <= '0;
                        bi <= '0;
                        state <= S_MFETCH;
                    end else if (!hit) begin
                        pc_f <= sidx;
                        ret_scan <= 1'b1;
                        p_sent <= 1'b0;
                        pbeat <= '0;
                        line_cnt <= '0;
                        state <= S_LINE;
                    end else begin
                        if (nm == 3'd0) s_idx_buf <= e_f2;
                        m_dst[nm[1:0]] <= e_a;
                        m_cols[nm[1:0]] <= e_f1;
                        m_beta[nm[1:0]] <= e_f3;
                        m_rb[nm[1:0]] <= 23'((25'(e_f1[23:0]) + 25'(Q - 1)) >> LQ);
                        colsum <= colsum + e_f1[24:0];
                        nm <= nm + 3'd1;
                    end
                end
                S_MFETCH: begin
                    if (mk != n_items && !it_ok) mk <= mk + 4'd1;
                    else if (p_cmd_valid && p_cmd_ready) mk <= mk + it_run;
                    if (ci == n_items) begin
                        // the q row's geometry (groups_w .. t_q: four register stages) settles
                        wt <= wt + 3'd1;
                        if (wt == 3'd4) state <= S_C3;
                    end else if (!ci_ok) begin
                        ci <= ci + 4'd1;
                    end else if (p_valid) begin
                        if (ci == 4'd0) begin
                            if (bi == 2'd0) begin
                                r_off <= p_data[63:0];
                                r_nbytes <= p_data[127:64];
                            end else if (bi == 2'd1) begin
                                r_kind <= p_data[7:0];
                                r_bits <= p_data[15:8];
                                r_str <= p_data[31:16];
                                r_n <= p_data[63:32];
                                r_k <= p_data[95:64];
                            end
                        end else if (ci <= 4'(nm)) begin
                            if (bi == 2'd0) begin
                                bt_off[2'(ci - 4'd1)] <= p_data[63:0];
                                bt_nbytes[2'(ci - 4'd1)] <= p_data[127:64];
                            end else if (bi == 2'd1) begin
                                bt_kind[2'(ci - 4'd1)] <= p_data[7:0];
                            end
                        end else if (ci == 4'(nm) + 4'd1) begin
                            qm_off <= p_data[31:0];
                            qm_cap <= p_data[63:32];
                            qm_w <= p_data[95:64];
                            qm_dt <= p_data[103:96];
                        end else if (ci == 4'(nm) + 4'd2) begin
                            sm_off <= p_data[31:0];
                            sm_cap <= p_data[63:32];
                            sm_dt <= p_data[103:96];
                        end else begin
                            dm_off[2'(ci - 4'(nm) - 4'd3)] <= p_data[31:0];
                            dm_cap[2'(ci - 4'(nm) - 4'd3)] <= p_data[63:32];
                            dm_w[2'(ci - 4'(nm) - 4'd3)] <= p_data[95:64];
                            dm_dt[2'(ci - 4'(nm) - 4'd3)] <= p_data[103:96];
                        end
                        if (ci <= 4'(nm) && bi != 2'd2) begin
                            bi <= bi + 2'd1;
                        end else begin
                            bi <= '0;
                            ci <= ci + 4'd1;
                        end
                    end
                end
                S_C3: begin
                    mi <= '0;
                    if (nm == 3'd0 && !pend && !keep_ok) begin
                        // the next K tile follows but the accumulator cannot take this linear (the checks
                        // let only this through): the host runs it
                        stop_host <= 1'b1;
                        retire <= 3'd1;
                        pc <= load_pc;
                        state <= S_STOP;
                    end else if (nm == 3'd0 && !pend) begin
                        // a K tile that keeps its sums: token tile tt, no scales, no results
                        rem_tok <= ntok - 32'(tt) * 32'(MT);
                        a_qptr <= qm_off + t_q + (32'(boff) << 4);
                        state <= S_TILE;
                    end else begin
                        state <= S_CM;
                    end
                end
                S_CM: begin
                    // from token tile tt on (0 unless a K-tiled linear is on a later token tile)
                    r_ptr[mi[1:0]] <= dm_off[mi[1:0]] + t_r[mi[1:0]];
                    r_step[mi[1:0]] <= (32'(m_rb[mi[1:0]]) * 32'(MT)) << LU;
                    mi <= mi + 3'd1;
                    if (mi + 3'd1 == nm) begin
                        rem_tok <= ntok - 32'(tt) * 32'(MT);
                        a_sptr <= sm_off + ((32'(tt) * 32'(MT)) << 2);
                        a_qptr <= qm_off + t_q + (32'(boff) << 4);
                        state <= S_TILE;
                    end
                end
                S_TILE: begin
                    q_beats <= nt * 32'(abt);
                    for (int i = 0; i < NM; i++) r_beats[i] <= (32'(m_rb[i]) * nt) << LR;
                    a_i <= keep ? 5'd1 : 5'd0;
                    a_qcur <= a_qptr;
                    b_i <= '0;
                    r_i <= '0;
                    sent_w <= 1'b0;
                    sent_e <= 1'b0;
                    state <= S_RUN;
                end
                S_RUN: begin
                    if (a_cmd_valid && a_cmd_ready) begin
                        a_i <= a_i + 5'd1;
                        if (a_i != 5'd0) a_qcur <= a_qcur + (32'(abt_w) << 4);
                    end
                    if (b_cmd_valid && b_cmd_ready) b_i <= b_i + 3'd1;
                    if (r_cmd_valid && r_cmd_ready) r_i <= r_i + 3'd1;
                    if (w_cmd_valid && w_cmd_ready) sent_w <= 1'b1;
                    if (e_cmd_valid && e_cmd_ready) sent_e <= 1'b1;
                    if (tile_issued && all_idle && !e_busy) begin
                        if (e_err_code) begin
                            state <= S_FAIL;
                            fail_code <= es_regs_pkg::ES_ERR_CODE;
                            fail_info <= '0;
                            fail_pc <= pc;
                        end else if (keep) begin
                            // the sums stay in the engine; the next tile's LOAD_ACT follows
                            kt_open <= 1'b1;
                            kt_next <= k0_cur + klen;
                            kt_boff <= boff + abt;
                            kt_rows <= tl_rows;
                            pc <= pc + 32'd1;
                            retire <= 3'd1;
                            state <= S_EXEC;
                        end else if (tl_acc) begin
                            // the last K tile of token tile tt: the next token tile starts the linear again
                            kt_open <= 1'b0;
                            retire <= nm + 3'd1;
                            if (last_tile) begin
                                tt <= '0;
                                pc <= pc + 32'(nm) + 32'd1;
                            end else begin
                                tt <= tt + 16'd1;
                                pc <= load_pc;
                            end
                            state <= S_EXEC;
                        end else if (last_tile) begin
                            kt_open <= 1'b0;
                            pc <= pc + 32'(nm) + 32'd1;
                            retire <= nm + 3'd1;
                            state <= S_EXEC;
                        end else begin
                            rem_tok <= rem_tok - 32'(MT);
                            a_sptr <= a_sptr + 32'(4 * MT);
                            a_qptr <= a_qptr + q_step;
                            for (int i = 0; i < NM; i++) r_ptr[i] <= r_ptr[i] + r_step[i];
                            state <= S_TILE;
                        end
                    end
                end
                S_UNIT: if (u_done) begin
                    if (u_err_code != es_regs_pkg::ES_ERR_NONE) begin
                        state <= S_FAIL;
                        fail_code <= u_err_code;
                        fail_info <= u_err_info;
                        fail_pc <= pc;
                    end else begin
                        // the rest of the run is the last token's (POS unchanged, as after a restart
                        // past the LAST_ROW with NTOK = 1)
                        if (u_last) ntok <= 32'd1;
                        u_last <= 1'b0;
                        pc <= pc + 32'd1;
                        retire <= 3'd1;
                        state <= S_EXEC;
                    end
                end
                S_STOP: if (all_idle) begin
                    st_done <= !stop_host;
                    st_host <= stop_host;
                    stop_pc <= pc;
                    state <= S_IDLE;
                end
                S_FAIL: if (all_idle) begin
                    st_error <= 1'b1;
                    err_code <= {fail_pc[15:0], 8'd0, fail_code};
                    err_info <= fail_info;
                    stop_pc <= fail_pc;
                    state <= S_IDLE;
                end
                S_RESET: if (all_idle) begin
                    state <= S_IDLE;
                end
                default: state <= S_IDLE;
            endcase
        end
    end

    wire unused = &{1'b0, r_nbytes[3:0], w_stride[63:32], wbytes[63:36], wbytes[3:0], e_f3[31:16], e_f2[31:16], m_cols[0][31:24],
                    r_bits, line_cnt};
endmodule
