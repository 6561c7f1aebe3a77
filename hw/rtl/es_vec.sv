// Vector unit: executes EMBED, NORM_QUANT, ROPE, ACT_MUL and ADD of program.bin (docs/program.md) on
// the buffers of the activation arena, bit-exact to docs/numerics.md, behind the dispatch interface of
// docs/units.md (es_seq pulses `go` with the 32-byte instruction; the unit resolves its operands,
// checks them, streams, and pulses `done` with an error code once every write is acknowledged).
//
// Operands: the buffer-map entries (one beat each at act_base + 16*i) and region entries (three beats
// at prog_base + 64 + 48*i) of the instruction are requested back to back on the read stream (an
// index out of range is not fetched) and checked in the order of docs/units.md ("Vector unit"):
// ERR FIELD / ERR RANGE with ERR_INFO = the opcode, before any data moves.
// Data: VL elements per cycle (a group: VL = 4 is the bus beat's four float32) through VL copies of
// es_vec_dp (fixed latency, one stall for all); the read stream's beats are cut into groups (float32
// words or int8 bytes, from any byte offset: embedding rows, RoPE table rows) by an extractor (a
// two-beat byte window), results are packed into beats (float32 units of the tile layout, or the i8
// slot layout) in front of the write stream. Row buffers (es_vec_ram: VL banks, VMAX floats each,
// VL consecutive elements from any index per cycle):
//   ADD, ACT_MUL  the buffers are contiguous (the tile layout of NTOK tokens is RB*NTOK units in a
//                 row), so they stream in blocks of VMAX floats: block of operand f0 into the row
//                 buffer, then operand f1 streams past it into the datapath and out to dst;
//   EMBED         per token: its id (ids buffer: u32 per token), its row scale, then the INT8 row
//                 straight from the weight image into the datapath (no buffer);
//   ROPE          per token: cos and sin rows at position pos0 + t into the second buffer, the
//                 token's row into the row buffer, then the rotated row out (ports A/B read the
//                 element and its rotate-half partner).
//   NORM_QUANT    the gain once per instruction into the second buffer; per token: the row into the
//                 row buffer and, beside it, u = x*g through the datapath (max|x| and max|u| on the
//                 way), c = 127/m on es_fdiv, pass 2 streams the row's elements again (q = rint(u*c),
//                 and z = rint(x * 2**(15-e)) summed as z^2 into S) with the q bytes gathered into
//                 the i8 slot layout's beats (2G elements a beat) to the q buffer, and the scalar
//                 chain (es_fcvt, es_fdiv, es_fadd W=64, es_fsqrt, es_fmul64: one IEEE operation per
//                 step, so bit-exact) gives s, gathered four to a beat of the scale buffer, while the
//                 next token's row comes in. x is read from DDR once.
// Read latency: a second read job queues behind the current one (its data waits in the read FIFO).
// A fault on the read or write stream ends the instruction at once with ERR AXI_READ / AXI_WRITE
// (ERR_INFO = the response); the shell's fault handling then aborts and drains the unit's masters.
// `abort`: stop issuing, drop arriving data, wait until both streams are idle, then done (code 0).
module es_vec #(
    parameter int Q = es_regs_pkg::ES_Q,
    parameter int MAXTOK = es_regs_pkg::ES_MAXTOK,
    parameter int G = es_regs_pkg::ES_G,
    parameter int VMAX = 8192,         // longest row on chip, in floats (power of two)
    parameter int VL = 1               // elements per cycle: 1 or 4 (the lanes of the datapath)
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
    input  logic [1:0]   wr_err_resp
);
    localparam int MT = MAXTOK;
    localparam int LQ = $clog2(Q);
    localparam int LU = $clog2(4 * Q);   // bytes of a unit (Q float32), log2
    localparam int LR = LU - 4;         // bus beats of a unit, log2
    localparam int LMT = $clog2(MT);
    localparam int LV = $clog2(VMAX);
    localparam logic [31:0] VLW = 32'(VL);
    localparam longint RECIP = ((64'd1 << 24) + 64'(G) - 64'd1) / 64'(G);   // ceil(2**24 / G)
    localparam logic [2:0] M_EMBED = 3'd0, M_RELU2 = 3'd1, M_ADD = 3'd2, M_ROPE = 3'd3, M_NQ = 3'd4;
    localparam logic [7:0] F_NORM = 8'd1, F_SILU = 8'd1;   // edgestream/program.py (not in es_regs_pkg)

    // a size, saturated at 2**33
    function automatic [33:0] sat34(input [71:0] v);
        sat34 = v[71:33] != '0 ? 34'h2_0000_0000 : v[33:0];
    endfunction
    // x * C for a constant C as shifted adds (a $mul by a constant goes to DSPs in synth_xilinx)
    function automatic [39:0] mulc(input [39:0] x, input int c);
        mulc = '0;
        for (int b = 0; b < 16; b++) if (((c >> b) & 1) != 0) mulc = mulc + (x << b);
    endfunction

    typedef enum logic [4:0] {
        S_IDLE, S_FETCH, S_GEO, S_CHECK, S_BLK, S_FILLX, S_STRM, S_TOK, S_EID, S_EIDCK, S_EBETA,
        S_EROW, S_RPOS, S_RCOS, S_RSIN, S_COMP, S_NEXT, S_WAITW, S_ABORT, S_NGAIN, S_NB, S_SCAL,
        S_CW
    } state_t;
    state_t state;

    // ---------------- instruction
    logic [7:0]  op, fl;
    logic [15:0] ia;
    logic [31:0] f0, f1, f2, f3;
    logic [15:0] nt_all;
    logic [31:0] p0;

    // ---------------- fetched entries: maps 0..2 (a, f0, f1), regions 3..4
    logic [31:0] m_off [3];
    logic [31:0] m_cap [3];
    logic [31:0] m_w [3];
    logic [7:0]  m_dt [3];
    logic [31:0] r_off [2];
    logic [1:0]  r_offhi;          // bits 63:32 of the region's offset are not 0
    logic [33:0] r_nb [2];          // its size, saturated at 2**33 (the sizes it is held against are)
    logic [7:0]  r_kind [2];
    logic [31:0] r_n [2];
    logic [31:0] r_k [2];

    wire is_embed = op == es_regs_pkg::ES_OP_EMBED;
    wire is_norm = op == es_regs_pkg::ES_OP_NORM_QUANT;
    wire is_rope = op == es_regs_pkg::ES_OP_ROPE;
    wire is_act = op == es_regs_pkg::ES_OP_ACT_MUL;
    wire is_add = op == es_regs_pkg::ES_OP_ADD;

    // operand items: used, index, in range (fetchable)
    logic [4:0]  used;
    logic [31:0] idx [5];
    logic [4:0]  ok;
    always_comb begin
        idx[0] = 32'(ia);
        idx[1] = f0;
        idx[2] = f1;
        idx[3] = is_embed ? f1 : f2;
        idx[4] = is_embed ? f2 : f3;
        if (is_embed || is_rope) used = 5'b11011;
        else if (is_norm) used = (fl & F_NORM) != 0 ? 5'b01111 : 5'b00111;
        else if (is_act || is_add) used = 5'b00111;
        else used = 5'b00000;
        for (int k = 0; k < 5; k++) begin
            if (k < 3) ok[k] = used[k] && idx[k] < n_buffers && (33'(idx[k]) + 33'd1) * 33'd16 <= 33'(act_size);
            else ok[k] = used[k] && idx[k] < n_regions
                         && 40'(es_regs_pkg::ES_PROG_HEADER_BYTES) + mulc(40'(idx[k]) + 40'd1, es_regs_pkg::ES_PROG_REGION_BYTES) <= 40'(prog_size);
        end
    end

    // ---------------- geometry (registered over S_GEO)
    // The products of the geometry, of ROPE's first table row and of EMBED's row offset share one
    // 32 x 32 multiplier (operands registered, product into its destination a cycle later): one a
    // cycle over S_GEO's six cycles (slot = geo_n; slot 3 is the opcode's own product), EMBED's id * W
    // per token. Each had a multiplier of its own (4 DSPs and LUT adders each). The sizes the checks
    // compare are saturated at 2**33: past every 32-bit capacity or offset + size, so the checks decide
    // as on the exact products (which 64 bits could not hold: r_n * r_k << 2).
    logic [31:0] W, rb, ncol, groups, abt;
    logic [31:0] tiles, ntok4;
    logic [33:0] need_f32, need_i8, need_s4, need_r0, need_r1, rope_w;
    logic [31:0] total_el;            // < 2**30 when the f32 checks pass (4 total_el <= need_f32 < 2**32)
    logic [2:0]  geo_n;
    localparam logic [2:0] GM_NONE = 3'd0, GM_GRP = 3'd1, GM_F32 = 3'd2, GM_R0 = 3'd3, GM_OWN = 3'd4,
                           GM_R1 = 3'd5, GM_ROW = 3'd6, GM_ROPE0 = 3'd7;
    logic [31:0] gm_a, gm_b;
    logic [2:0]  gm_d;
    wire  [63:0] gm_p = 64'(gm_a) * 64'(gm_b);
    always_ff @(posedge clk) begin
        W <= m_w[0];
        rb <= 32'((33'(W) + 33'(Q - 1)) >> LQ);
        ncol <= rb << LQ;
        abt <= (groups + 32'd1) >> 1;
        nqe <= 32'(mulc(40'(abt), 2 * G));
        tiles <= (32'(nt_all) + 32'(MT - 1)) >> LMT;
        ntok4 <= (32'(nt_all) + 32'd3) >> 2;
        need_s4 <= 34'(ntok4) << 4;
        case (gm_d)
            GM_GRP: groups <= 32'(gm_p >> 24);
            GM_F32: need_f32 <= sat34(72'(gm_p) << (LMT + LU));
            GM_R0: need_r0 <= is_embed ? sat34(72'(gm_p)) : is_norm ? 34'(W) << 2 : sat34(72'(gm_p) << 2);
            GM_OWN: begin
                need_i8 <= sat34(72'(gm_p) << 4);
                rope_w <= sat34(72'(gm_p) << 1);
                total_el <= gm_p[31:0];
            end
            GM_R1: need_r1 <= is_embed ? 34'(r_n[0]) << 2 : sat34(72'(gm_p) << 2);
            default: ;
        endcase
    end

    // ---------------- checks (docs/units.md order; the first failing one is reported)
    function automatic [7:0] want_dt(input [7:0] o, input int k);
        if (o == es_regs_pkg::ES_OP_EMBED) want_dt = k == 1 ? es_regs_pkg::ES_B_IDS : es_regs_pkg::ES_B_F32;
        else if (o == es_regs_pkg::ES_OP_NORM_QUANT) want_dt = k == 0 ? es_regs_pkg::ES_B_F32 : k == 1 ? es_regs_pkg::ES_B_I8 : es_regs_pkg::ES_B_SCALE;
        else want_dt = es_regs_pkg::ES_B_F32;
    endfunction
    logic [7:0] ck;
    logic       shape_bad;
    logic [33:0] need;
    always_comb begin
        ck = es_regs_pkg::ES_ERR_NONE;
        if (!(is_embed || is_norm || is_rope || is_act || is_add)) ck = es_regs_pkg::ES_ERR_OPCODE;
        else if (nt_all == 16'd0) ck = es_regs_pkg::ES_ERR_FIELD;
        for (int k = 0; k < 5; k++) begin
            if (ck == es_regs_pkg::ES_ERR_NONE && used[k]) begin
                if (!ok[k]) ck = es_regs_pkg::ES_ERR_RANGE;
                else if (k < 3 && m_dt[k] != want_dt(op, k)) ck = es_regs_pkg::ES_ERR_FIELD;
                else if (k >= 3 && r_kind[k - 3] != ((is_embed && k == 3) ? es_regs_pkg::ES_RK_I8ROWS : es_regs_pkg::ES_RK_F32)) ck = es_regs_pkg::ES_ERR_FIELD;
            end
        end
        // shapes and widths; operations this build does not compute yet are ERR FIELD too
        if (is_embed) shape_bad = W == 0 || W != r_k[0] || m_w[1] != 32'd1 || r_n[0] == 0;
        else if (is_act) shape_bad = (fl & F_SILU) != 0 || W == 0 || m_w[1] != W || m_w[2] != W;
        else if (is_add) shape_bad = W == 0 || m_w[1] != W || m_w[2] != W;
        else if (is_rope) shape_bad = W == 0 || W > 32'(VMAX) || m_w[1] != W || r_k[0] == 0 || r_n[0] != r_n[1]
                                      || r_k[0] != r_k[1] || 33'(r_k[0]) * 33'd2 > 33'(VMAX) || rope_w != 34'(W);
        else shape_bad = W == 0 || W > 32'(VMAX) || m_w[1] != W
                         || ((fl & F_NORM) != 0 && (r_n[0] != 32'd1 || r_k[0] != W));
        if (ck == es_regs_pkg::ES_ERR_NONE && shape_bad) ck = es_regs_pkg::ES_ERR_FIELD;
        for (int k = 0; k < 5; k++) begin
            if (k < 3) need = m_dt[k] == es_regs_pkg::ES_B_F32 ? need_f32 : m_dt[k] == es_regs_pkg::ES_B_I8 ? need_i8 : need_s4;
            else need = k == 3 ? need_r0 : need_r1;
            if (ck == es_regs_pkg::ES_ERR_NONE && used[k]) begin
                if (k < 3 && (m_off[k][3:0] != 4'd0 || 33'(m_off[k]) + 33'(m_cap[k]) > 33'(act_size) || need > 34'(m_cap[k])))
                    ck = es_regs_pkg::ES_ERR_RANGE;
                if (k >= 3 && (r_off[k - 3][3:0] != 4'd0 || r_offhi[k - 3] || need > r_nb[k - 3]
                               || 35'(r_off[k - 3]) + 35'(need) > 35'(wgt_size)))
                    ck = es_regs_pkg::ES_ERR_RANGE;
            end
        end
        // RoPE: the positions pos0 .. pos0 + NTOK - 1 must be rows of the tables
        if (ck == es_regs_pkg::ES_ERR_NONE && is_rope && 33'(p0) + 33'(nt_all) > 33'(r_n[0])) ck = es_regs_pkg::ES_ERR_RANGE;
    end

    // ---------------- entry fetch pointers
    logic [2:0] mk, ci;
    logic [1:0] bi;
    wire mk_reg = mk >= 3'd3;
    wire ci_reg = ci >= 3'd3;

    // ---------------- read job: commands (addr, count, stride, beats) and the element extractor
    logic [39:0]  rj_addr, rq_addr;
    logic [31:0]  rj_left, rj_beats, rj_stride, rq_left, rq_beats, rq_stride;
    logic         pre;              // the read commands of the coming fill are issued or queued
    logic         ex_first, ex_byte;
    // the window: two beats in a ring of 32 bytes, the group's first byte at rp. A beat fills a whole
    // slot (rp + wn is a slot boundary: 16 after the first beat, moved by 16 a beat; takes move rp and
    // wn alike), so only the group's read rotates: word lanes from a 4-byte-aligned rp (f32 rows start
    // at 4-byte multiples of the 16-aligned bases), byte lanes from any rp. Shifting the whole window by
    // the group and the beat in above what stays cost ~2k LUT of 256-bit shifters.
    logic [255:0] win;
    logic [4:0]   rp;               // ring byte of the group's first element
    logic         ws;               // the slot the next beat fills
    logic [5:0]   wn;               // bytes held, 0..32
    logic [3:0]   ex_skip;          // bytes of the job's first beat before its first element
    logic [31:0]  ex_left;          // elements of the job not taken yet
    logic         el_take;
    wire  [31:0]  ex_n = ex_left > VLW ? VLW : ex_left;                  // elements of the next group
    wire  [5:0]   ex_need = ex_byte ? 6'(ex_n) : 6'(ex_n) << 2;          // its bytes
    wire          el_valid = ex_left != 32'd0 && !ex_first && wn >= ex_need;
    wire          el_fire = el_valid && el_take;
    wire  [31:0]  ex_rest = ex_left - (el_fire ? ex_n : 32'd0);
    wire  [5:0]   wn_c = el_fire ? wn - ex_need : wn;
    wire  [33:0]  ex_rest_b = ex_byte ? 34'(ex_rest) : 34'(ex_rest) << 2;
    // a beat is taken while the window lacks bytes of the job and has room for it: exactly the job's
    // ceil((skip + bytes) / 16) beats, whatever the group size
    wire          ex_load = ex_left != 32'd0 && (ex_first || (ex_rest_b > 34'(wn_c) && wn_c <= 6'd16));
    logic [VL-1:0] el_m;            // lanes of the group that hold an element
    logic [31:0]  el_l [VL];        // lane k: element k of the group (an int8 in bits 7:0)
    logic [32*VL-1:0] el_w;
    always_comb begin
        for (int k = 0; k < VL; k++) begin
            el_m[k] = 32'(k) < ex_n;
            el_l[k] = ex_byte ? {24'd0, win[8 * 5'(rp + 5'(k)) +: 8]} : win[32 * 3'(rp[4:2] + 3'(k)) +: 32];
            el_w[32 * k +: 32] = el_l[k];
        end
    end

    // ---------------- write job and the beat packer
    logic [39:0]  wj_addr;
    logic [31:0]  wj_left, wj_beats, wj_stride;
    logic [95:0]  pk_acc;           // f32 packer (one element per cycle): the beat's first three words
    logic [127:0] ob;
    logic         ob_v;
    logic [1:0]   pk_w;

    // ---------------- datapath issue
    logic        en, iss, lst_i, xwe, gwe, nsin_i;
    logic [VL-1:0] pad_i, pad0;
    logic [LV-1:0] xa, xb, ga, gb;
    logic        v0, lst0, nsin0, xe0;
    logic [31:0] e0 [VL];
    logic [31:0] beta, id;
    logic [32*VL-1:0] x_a, x_b, g_a, g_b;
    logic        dp_v;
    logic [31:0] dp_y [VL];
    logic [7:0]  dp_q [VL];
    logic [31:0] dp_zz [VL];
    logic [2:0]  mode;
    logic        sm;                // one element per cycle on lane 0 (VL = 1; ROPE with D/2 off VL)

    wire dp_ready = !ob_v || wr_ready;
    assign en = !(dp_v && !dp_ready);

    es_vec_ram #(.VL(VL), .N(VMAX)) u_xbuf (
        .clk, .en, .we(xwe), .wm(el_m), .a_idx(xa), .a_wdata(el_w), .a_rdata(x_a), .b_idx(xb), .b_rdata(x_b)
    );
    es_vec_ram #(.VL(VL), .N(VMAX)) u_gbuf (
        .clk, .en, .we(gwe), .wm(el_m), .a_idx(ga), .a_wdata(el_w), .a_rdata(g_a), .b_idx(gb), .b_rdata(g_b)
    );

    // the datapath is held in reset while idle or aborting (a failed instruction leaves nothing in it)
    logic dp_rst_n;
    always_ff @(posedge clk) dp_rst_n <= rst_n && state != S_IDLE && state != S_ABORT;
    // the same for the sequential scalar units (their reset is asynchronous: a register of its own)
    logic sc_rst_n;
    always_ff @(posedge clk) sc_rst_n <= rst_n && state != S_IDLE && state != S_ABORT;
    // NORM_QUANT without a gain: u = x * 1.0 (exact), so one datapath serves both forms
    wire nog = is_norm && (fl & F_NORM) == 0;
    logic signed [9:0] kz;
    for (genvar k = 0; k < VL; k++) begin : g_lane
        logic dv, dl;
        es_vec_dp u_dp (
            .clk, .rst_n(dp_rst_n), .en, .mode, .in_valid(v0), .x(xe0 ? e0[k] : x_a[32 * k +: 32]), .p(x_b[32 * k +: 32]),
            .g(nog ? 32'h3F800000 : g_a[32 * k +: 32]), .h(g_b[32 * k +: 32]), .e(e0[k]), .beta, .kz, .pad(pad0[k]),
            .nsin(nsin0), .lst(lst0), .out_valid(dv), .y(dp_y[k]), .q(dp_q[k]), .zz(dp_zz[k]), .out_lst(dl)
        );
        // the lanes run in lockstep: lane 0's valid is the group's
        if (k == 0) begin : g_v
            assign dp_v = dv;
        end
        wire unused_l = &{1'b0, dv, dl};
    end

    // ---------------- NORM_QUANT: per-token state and the scalar chain (docs/numerics.md norm_quant)
    localparam logic [31:0] ACT_EPS = 32'h3727C5AC;   // float32(1e-5)
    logic [30:0]  amax_x, amax_u;     // max |x|, max |u| as magnitude bits (finite floats order as integers)
    logic [31:0]  m32;                // m = max(max|u|, 1e-5)
    logic [63:0]  ssum;               // S = sum z_i^2 (exact)
    logic [63:0]  sr, sx;             // the chain's two float64 registers
    logic [127:0] sbeat;              // scales of up to 4 tokens (one beat of the scale buffer)
    logic [31:0]  qoff;               // the token's q row, relative to the q buffer
    // i8 packer: pass 2 streams the row's elements VL per cycle (the token's q row is abt beats of two
    // slots, 2G elements, each); their q bytes gather here, 2G of them make a beat of the slot layout
    localparam int QB = 8 * (2 * G + VL);
    logic [QB-1:0] qacc;
    logic [5:0]   qn;                 // q bytes held, < 2G
    logic [31:0]  nqe;                // elements of pass 2: 2G per beat of the q row
    logic [3:0]   sc_step;
    logic [2:0]   sc_cnt;
    // the scalar chain runs beside the control: token t's steps 0-10 overlap token t+1's row fill
    // (the next c, step 11, waits for them); its s goes into the scale beat when it is out
    logic         cb;                 // chain busy
    logic         sw_pend;            // s of token ts waits for its word of the scale beat
    logic [31:0]  sval;
    wire  [QB-1:0] qa_n = qacc | (QB'(dp_qw) << {qn, 3'b000});
    wire  [5:0]    qn_n = qn + 6'(VL);
    logic [127:0] qbeat;              // bytes 0..2G-1 of qa_n in the slot layout (slot bytes past G: 0)
    always_comb begin
        qbeat = '0;
        for (int sl = 0; sl < 2; sl++)
            for (int i = 0; i < G; i++) qbeat[8 * (8 * sl + i) +: 8] = qa_n[8 * (G * sl + i) +: 8];
    end
    wire  [31:0]  nbl = abt << 4;     // bytes of a token's q row

    // the group's results: y and q packed by lane, max |u| and the sum of z^2 over the lanes
    logic [32*VL-1:0] dp_yw;
    logic [8*VL-1:0]  dp_qw;
    logic [30:0]      dp_umax;
    logic [63:0]      dp_zsum;
    always_comb begin
        dp_umax = amax_u;
        dp_zsum = '0;
        for (int k = 0; k < VL; k++) begin
            dp_yw[32 * k +: 32] = dp_y[k];
            dp_qw[8 * k +: 8] = dp_q[k];
            if (dp_y[k][30:0] > dp_umax) dp_umax = dp_y[k][30:0];
            dp_zsum = dp_zsum + 64'(dp_zz[k]);
        end
    end

    // frexp exponent of a finite non-negative float32 (magnitude bits): max|x| = f * 2**e, f in [0.5, 1)
    function automatic logic signed [9:0] frexp_e(input logic [30:0] b);
        frexp_e = 10'sd0;
        if (b[30:23] != 8'd0) frexp_e = $signed({2'b00, b[30:23]}) - 10'sd126;
        else for (int i = 0; i < 23; i++) if (b[i]) frexp_e = 10'(i) - 10'sd148;
    endfunction

    // Steps (each one IEEE operation, correctly rounded): 11 c = 127f / m (before pass 2); with a gain
    // 0 S * 2**(2(e-15)) (int64 -> float64, exact), 1 float64(K), 2 ms = ./K, 3 float64(eps),
    // 4 ms + eps, 5 sqrt, 6 r = 1 / sqrt, then 7 float64(m), 8 ./127, 9 * r, 10 s = float32(.)
    // (without a gain 7, 8, 10).
    localparam logic [2:0] U_CVT = 3'd0, U_ADD = 3'd1, U_DIV = 3'd2, U_SQRT = 3'd3, U_MUL = 3'd4;
    logic [2:0]  sc_u;
    logic [1:0]  cv_op;
    logic [63:0] cv_a, dv_a, dv_b;
    logic signed [11:0] cv_k;
    logic        dv_dbl;
    always_comb begin
        cv_op = 2'd0;
        cv_a = {32'd0, m32};
        cv_k = '0;
        dv_dbl = 1'b1;
        dv_a = sr;
        dv_b = sx;
        case (sc_step)
            4'd0: begin sc_u = U_CVT; cv_op = 2'd2; cv_a = ssum; cv_k = -(12'(kz) <<< 1); end
            4'd1: begin sc_u = U_CVT; cv_op = 2'd2; cv_a = 64'(W); end
            4'd2: sc_u = U_DIV;
            4'd3: begin sc_u = U_CVT; cv_a = {32'd0, f3}; end
            4'd4: sc_u = U_ADD;
            4'd5: sc_u = U_SQRT;
            4'd6: begin sc_u = U_DIV; dv_a = 64'h3FF0000000000000; dv_b = sr; end
            4'd7: sc_u = U_CVT;
            4'd8: begin sc_u = U_DIV; dv_a = sx; dv_b = 64'h405FC00000000000; end
            4'd9: sc_u = U_MUL;
            4'd10: begin sc_u = U_CVT; cv_op = 2'd1; cv_a = sr; end
            default: begin sc_u = U_DIV; dv_dbl = 1'b0; dv_a = {32'd0, 32'h42FE0000}; dv_b = {32'd0, m32}; end
        endcase
    end
    wire sc_go = cb && sc_cnt == 3'd0;
    logic [63:0] cv_y, ad_y, dv_y, sq_y, mu_y;
    logic        dv_done, sq_done, mu_done, dv_busy, sq_busy, mu_busy;
    es_fcvt u_cvt (.clk, .en(1'b1), .op(cv_op), .a(cv_a), .k(cv_k), .y(cv_y));
    es_fadd #(.W(64)) u_add64 (.clk, .en(1'b1), .sub(1'b0), .a(sr), .b(sx), .y(ad_y));
    es_fdiv u_div (.clk, .rst_n(sc_rst_n), .start(sc_go && sc_u == U_DIV), .dbl(dv_dbl), .a(dv_a), .b(dv_b),
                   .busy(dv_busy), .done(dv_done), .y(dv_y));
    es_fsqrt u_sqrt (.clk, .rst_n(sc_rst_n), .start(sc_go && sc_u == U_SQRT), .a(sr), .busy(sq_busy),
                     .done(sq_done), .y(sq_y));
    es_fmul64 u_mul64 (.clk, .rst_n(sc_rst_n), .start(sc_go && sc_u == U_MUL), .a(sx), .b(sr), .busy(mu_busy),
                       .done(mu_done), .y(mu_y));
    // the pipelined units (latency 5) see operands held since the step began
    wire sc_fin = sc_u == U_CVT || sc_u == U_ADD ? sc_cnt == 3'd7 : sc_u == U_DIV ? dv_done
                : sc_u == U_SQRT ? sq_done : mu_done;
    wire [63:0] sc_y = sc_u == U_CVT ? cv_y : sc_u == U_ADD ? ad_y : sc_u == U_DIV ? dv_y : sc_u == U_SQRT ? sq_y : mu_y;
    logic [8:0] pipe_n;    // elements in the pipe (issued, not yet packed)
    wire pipe_empty = pipe_n == 9'd0;

    // ---------------- phase counters
    logic [31:0] cnt, nel;
    // position of the element streaming in block mode: column bq of the row batch of token btok of the
    // tile (the tile layout is [row batch][token of the tile][Q]); wleft: W less the columns of the row
    // batches before (the last batch is the one with wleft <= Q); b_trem: tokens from this tile on.
    // Counters at the widths their bounds need (a 32-bit `x + 1 == y` is a ripple of LUTs in abc9)
    localparam int TKW = LMT + 1;     // tokens of a tile, 0..MT
    logic [LQ:0]  bq;
    logic [TKW-1:0] btok, b_nt;
    logic [31:0]  wleft;
    logic [16:0]  b_trem;
    wire          wlast = wleft <= 32'(Q);
    logic [31:0] blk_left;
    logic [31:0] bo;              // byte offset of the current block
    logic [16:0] t, ts;           // token of the instruction (NTOK < 2**16)
    logic [TKW-1:0] tt, nt;       // token of the tile, tokens of the tile
    logic [31:0] tile_base;
    logic [31:0] rowoff;          // < 2**32 where used: inside a region the checks bound
    logic [LV:0] hd, ri;          // RoPE: half the head dimension (2 hd <= VMAX), the element's index in its head
    wire  [LV:0] gi = ri < hd ? ri : ri - hd;
    // the sin row's place in the second buffer: the first multiple of VL from hd (es_vec_ram: VL-wide
    // accesses are aligned)
    localparam logic [LV:0] VLM = (LV + 1)'(VL - 1);
    wire  [LV:0] hd_al = (hd + VLM) & ~VLM;
    logic [7:0]  fail;

    // max |x| of the fill group's elements inside the row
    logic [30:0] fx_max;
    always_comb begin
        fx_max = amax_x;
        for (int k = 0; k < VL; k++)
            if (el_m[k] && cnt + 32'(k) < W && el_l[k][30:0] > fx_max) fx_max = el_l[k][30:0];
    end
    wire [31:0] cstep = sm ? 32'd1 : VLW;   // ROPE's elements per issue

    wire [16:0] nt_rest = 17'(nt_all) - (t + 17'd1);
    wire [TKW-1:0] nt_next = nt_rest > 17'(MT) ? TKW'(MT) : TKW'(nt_rest);

    // issue of one group (combinational, from the state); pad lanes compute +0
    always_comb begin
        iss = 1'b0;
        el_take = 1'b0;
        xwe = 1'b0;
        gwe = 1'b0;
        nsin_i = 1'b0;
        xa = cnt[LV-1:0];
        xb = cnt[LV-1:0];
        ga = cnt[LV-1:0];
        gb = cnt[LV-1:0];
        pad_i = '0;
        lst_i = 1'b0;
        case (state)
            S_EID, S_EBETA: el_take = 1'b1;
            S_RCOS, S_RSIN: begin
                el_take = 1'b1;
                gwe = el_valid;
            end
            S_COMP: begin
                xb = ri < hd ? cnt[LV-1:0] + hd[LV-1:0] : cnt[LV-1:0] - hd[LV-1:0];
                ga = gi[LV-1:0];
                gb = gi[LV-1:0] + hd_al[LV-1:0];
                nsin_i = ri < hd;
                for (int k = 0; k < VL; k++) pad_i[k] = (sm && k != 0) || cnt + 32'(k) >= W;
                lst_i = cnt + cstep == ncol;
                iss = en && cnt != ncol;
            end
            S_FILLX: begin
                // NORM_QUANT: the row goes into the buffer and, beside it, u = x*g through the
                // datapath for max|u| (g read at the element's index; columns past W are +0)
                el_take = !is_norm || en;
                xwe = el_valid && (!is_norm || en);
                iss = is_norm && en && el_valid;
                for (int k = 0; k < VL; k++) pad_i[k] = !el_m[k] || cnt + 32'(k) >= W;
            end
            S_NGAIN: begin
                el_take = 1'b1;
                gwe = el_valid;
            end
            S_NB: begin
                // elements past W are the slot layout's padding: q = 0, z = 0
                for (int k = 0; k < VL; k++) pad_i[k] = cnt + 32'(k) >= W;
                iss = en && cnt < nqe;
            end
            S_STRM: begin
                el_take = en && cnt != nel;
                iss = el_take && el_valid;
                for (int k = 0; k < VL; k++) pad_i[k] = 32'(bq) + 32'(k) >= wleft;
            end
            S_EROW: begin
                for (int k = 0; k < VL; k++) pad_i[k] = cnt + 32'(k) >= W;
                lst_i = cnt + VLW == ncol;
                el_take = en && cnt < W && cnt != ncol;
                iss = en && cnt != ncol && (cnt >= W || el_valid);
            end
            default: ;
        endcase
    end

    // ---------------- read command mux (entry fetch or the read job)
    always_comb begin
        rd_cmd_valid = 1'b0;
        rd_cmd_addr = rj_addr;
        rd_cmd_beats = rj_beats;
        if (state == S_FETCH) begin
            rd_cmd_valid = mk != 3'd5 && ok[mk];
            rd_cmd_addr = mk_reg ? prog_base + 40'(es_regs_pkg::ES_PROG_HEADER_BYTES) + mulc(40'(idx[mk]), es_regs_pkg::ES_PROG_REGION_BYTES)
                                 : act_base + (40'(idx[mk]) << 4);
            rd_cmd_beats = mk_reg ? 32'd3 : 32'd1;
        end else if (state != S_ABORT && state != S_IDLE) begin
            rd_cmd_valid = rj_left != 32'd0;
        end
    end
    assign rd_ready = state == S_ABORT || (state == S_FETCH && ci != 3'd5 && ok[ci]) || (state != S_FETCH && ex_load);

    assign wr_cmd_valid = wj_left != 32'd0 && state != S_ABORT && state != S_IDLE;
    assign wr_cmd_addr = wj_addr;
    assign wr_cmd_beats = wj_beats;
    assign wr_valid = ob_v && state != S_ABORT;
    assign wr_data = ob;
    assign busy = state != S_IDLE;

    // rows of token t in the f32 tile layout: RB units at stride nt*U (one command when nt = 1)
    wire [39:0] row_addr = 40'(tile_base) + (40'(tt) << LU);   // relative to the buffer
    wire [31:0] row_cmds = nt == TKW'(1) ? 32'd1 : rb;
    wire [31:0] row_beats = nt == TKW'(1) ? rb << LR : 32'd1 << LR;
    wire [31:0] row_stride = 32'(nt) << LU;
    wire        tile_end = tt + TKW'(1) == nt;
    wire [TKW-1:0] nt_n = tile_end ? nt_next : nt;
    wire [31:0] tile_base_n = tile_base + ((rb << LMT) << LU);
    wire [39:0] row_addr_n = tile_end ? 40'(tile_base_n) : 40'(tile_base) + (40'(tt + TKW'(1)) << LU);
    wire [39:0] rope_c = wgt_base + 40'(r_off[0][31:0]) + 40'(rowoff);
    wire [39:0] rope_s = wgt_base + 40'(r_off[1][31:0]) + 40'(rowoff);
    wire [39:0] emb_byte = wgt_base + 40'(r_off[0][31:0]) + 40'(rowoff);

    wire ax_err = rd_err || wr_err;

    always_ff @(posedge clk) begin
        done <= 1'b0;
        gm_d <= GM_NONE;
        if (!rst_n) begin
            state <= S_IDLE;
            err_code <= es_regs_pkg::ES_ERR_NONE;
            err_info <= '0;
            rj_left <= '0;
            rq_left <= '0;
            wj_left <= '0;
            cb <= 1'b0;
            sw_pend <= 1'b0;
            ex_left <= '0;
            wn <= '0;
            ob_v <= 1'b0;
            v0 <= 1'b0;
            pipe_n <= '0;
        end else if (abort && state != S_IDLE && state != S_ABORT) begin
            state <= S_ABORT;
        end else if (state != S_IDLE && state != S_ABORT && state != S_WAITW && ax_err) begin
            // a bus fault ends the instruction at once; the shell aborts and drains the masters
            done <= 1'b1;
            err_code <= rd_err ? es_regs_pkg::ES_ERR_AXI_READ : es_regs_pkg::ES_ERR_AXI_WRITE;
            err_info <= {30'd0, rd_err ? rd_err_resp : wr_err_resp};
            state <= S_IDLE;
            rj_left <= '0;
            rq_left <= '0;
            wj_left <= '0;
            cb <= 1'b0;
            sw_pend <= 1'b0;
            ex_left <= '0;
            wn <= '0;
            ob_v <= 1'b0;
            v0 <= 1'b0;
            pipe_n <= '0;
        end else begin
            // ---- read job commands
            if (state != S_FETCH && rd_cmd_valid && rd_cmd_ready) begin
                rj_addr <= rj_addr + 40'(rj_stride);
                rj_left <= rj_left - 32'd1;
            end
            // the queued job follows the current one on the read stream (its data waits in the read
            // FIFO until the extractor takes it: the read latency of the second job is hidden)
            if (rj_left == 32'd0 && rq_left != 32'd0) begin
                rj_addr <= rq_addr;
                rj_left <= rq_left;
                rj_beats <= rq_beats;
                rj_stride <= rq_stride;
                rq_left <= '0;
            end
            // ---- extractor: a group out of the window's bottom, a beat in above what stays
            if (state != S_FETCH) begin
                if (ex_load && rd_valid && ex_first) begin
                    win[127:0] <= rd_data;
                    rp <= 5'(ex_skip);
                    ws <= 1'b1;
                    wn <= 6'd16 - 6'(ex_skip);
                    ex_first <= 1'b0;
                end else if (ex_load && rd_valid) begin
                    if (ws) win[255:128] <= rd_data;
                    else win[127:0] <= rd_data;
                    ws <= !ws;
                    if (el_fire) rp <= rp + 5'(ex_need);
                    wn <= wn_c + 6'd16;
                end else if (el_fire) begin
                    rp <= rp + 5'(ex_need);
                    wn <= wn_c;
                end
                if (el_fire) ex_left <= ex_left - ex_n;
            end
            // ---- write job commands
            if (wr_cmd_valid && wr_cmd_ready) begin
                wj_addr <= wj_addr + 40'(wj_stride);
                wj_left <= wj_left - 32'd1;
            end
            // ---- pipe: stage 0 (aligned with the buffers' registered reads), then the packer
            if (en) begin
                v0 <= iss;
                xe0 <= state == S_FILLX;
                for (int k = 0; k < VL; k++) e0[k] <= el_l[k];
                pad0 <= pad_i;
                nsin0 <= nsin_i;
                lst0 <= lst_i;
            end
            pipe_n <= pipe_n + 9'(iss) - 9'(dp_v && dp_ready);
            if (wr_valid && wr_ready) ob_v <= 1'b0;
            if (dp_v && dp_ready && mode == M_NQ) begin
                if (state != S_NB) begin
                    amax_u <= dp_umax;
                end else begin
                    // pass 2: q bytes in the i8 slot layout (padding bytes arrive as 0), S
                    ssum <= ssum + dp_zsum;
                    if (qn_n >= 6'(2 * G)) begin
                        ob <= qbeat;
                        ob_v <= 1'b1;
                        qacc <= qa_n >> (16 * G);
                        qn <= qn_n - 6'(2 * G);
                    end else begin
                        qacc <= qa_n;
                        qn <= qn_n;
                    end
                end
            end else if (dp_v && dp_ready && sm) begin
                pk_acc[{pk_w, 5'b00000} +: 32] <= dp_y[0];
                pk_w <= pk_w + 2'd1;
                if (pk_w == 2'd3) begin
                    ob <= {dp_y[0], pk_acc[95:0]};
                    ob_v <= 1'b1;
                end
            end else if (dp_v && dp_ready) begin
                ob <= 128'(dp_yw);    // VL = 4: the group is a beat
                ob_v <= 1'b1;
            end

            // ROPE's row behind its cos and sin rows, EMBED's row behind its scale: requested as soon
            // as the read queue is empty (case statements below do not touch rj then)
            if ((state == S_RCOS || state == S_RSIN || state == S_EBETA || state == S_EROW) && !pre
                && rj_left == 32'd0 && rq_left == 32'd0) begin
                rj_addr <= state == S_EBETA || state == S_EROW ? {emb_byte[39:4], 4'd0} : act_base + 40'(m_off[1]) + row_addr;
                rj_left <= state == S_EBETA || state == S_EROW ? 32'd1 : row_cmds;
                rj_beats <= state == S_EBETA || state == S_EROW ? (32'(emb_byte[3:0]) + W + 32'd15) >> 4 : row_beats;
                rj_stride <= state == S_EBETA || state == S_EROW ? 32'd0 : row_stride;
                pre <= 1'b1;
            end

            // ---- the scalar chain (docs/numerics.md norm_quant; steps above)
            if (cb) begin
                if (sc_cnt != 3'd7) sc_cnt <= sc_cnt + 3'd1;
                if (sc_fin) begin
                    sc_cnt <= '0;
                    sc_step <= sc_step + 4'd1;
                    if (sc_step == 4'd1 || sc_step == 4'd3 || sc_step == 4'd7 || (sc_step == 4'd8 && !nog)) sx <= sc_y;
                    else sr <= sc_y;
                    if (sc_step == 4'd8 && nog) sc_step <= 4'd10;
                    if (sc_step == 4'd10 || sc_step == 4'd11) cb <= 1'b0;
                    if (sc_step == 4'd10) begin
                        sval <= sc_y[31:0];
                        sw_pend <= 1'b1;
                    end
                end
            end
            // ---- s into its word of the scale beat; the beat goes out when full or at the last token
            // (the control is between pass 2 and the next c then: nothing else writes)
            if (sw_pend && wj_left == 32'd0 && !ob_v) begin
                sw_pend <= 1'b0;
                if (ts[1:0] == 2'd3 || ts + 17'd1 == 17'(nt_all)) begin
                    ob <= sbeat | ({96'd0, sval} << {ts[1:0], 5'b00000});
                    ob_v <= 1'b1;
                    wj_addr <= act_base + 40'(m_off[2]) + 40'({ts[16:2], 4'd0});
                    wj_left <= 32'd1;
                    wj_beats <= 32'd1;
                    wj_stride <= '0;
                    sbeat <= '0;
                end else begin
                    sbeat <= sbeat | ({96'd0, sval} << {ts[1:0], 5'b00000});
                end
            end

            // ---- the shared multiplier: one product a cycle, issued by S_GEO and S_EID below
            if (gm_d == GM_ROW) rowoff <= gm_p[31:0];
            if (gm_d == GM_ROPE0) rowoff <= {gm_p[29:0], 2'b00};
            case (state)
                S_IDLE: begin
                  // the datapath is held in reset while idle: whatever a failed instruction left is gone
                  pipe_n <= '0;
                  if (go) begin
                    op <= instr[7:0];
                    fl <= instr[15:8];
                    ia <= instr[31:16];
                    f0 <= instr[63:32];
                    f1 <= instr[95:64];
                    f2 <= instr[127:96];
                    f3 <= instr[159:128];
                    nt_all <= ntok;
                    p0 <= pos0;
                    mk <= '0;
                    ci <= '0;
                    bi <= '0;
                    fail <= es_regs_pkg::ES_ERR_NONE;
                    state <= S_FETCH;
                  end
                end
                S_FETCH: begin
                    if (mk != 3'd5 && !ok[mk]) mk <= mk + 3'd1;
                    else if (rd_cmd_valid && rd_cmd_ready) mk <= mk + 3'd1;
                    if (ci == 3'd5) begin
                        geo_n <= '0;
                        state <= S_GEO;
                    end else if (!ok[ci]) begin
                        ci <= ci + 3'd1;
                    end else if (rd_valid) begin
                        if (!ci_reg) begin
                            m_off[ci[1:0]] <= rd_data[31:0];
                            m_cap[ci[1:0]] <= rd_data[63:32];
                            m_w[ci[1:0]] <= rd_data[95:64];
                            m_dt[ci[1:0]] <= rd_data[103:96];
                            ci <= ci + 3'd1;
                        end else begin
                            if (bi == 2'd0) begin
                                r_off[1'(ci - 3'd3)] <= rd_data[31:0];
                                r_offhi[1'(ci - 3'd3)] <= rd_data[63:32] != 32'd0;
                                r_nb[1'(ci - 3'd3)] <= sat34(72'(rd_data[127:64]));
                            end else if (bi == 2'd1) begin
                                r_kind[1'(ci - 3'd3)] <= rd_data[7:0];
                                r_n[1'(ci - 3'd3)] <= rd_data[63:32];
                                r_k[1'(ci - 3'd3)] <= rd_data[95:64];
                            end
                            bi <= bi == 2'd2 ? 2'd0 : bi + 2'd1;
                            if (bi == 2'd2) ci <= ci + 3'd1;
                        end
                    end
                end
                S_GEO: begin
                    geo_n <= geo_n + 3'd1;
                    // the shared multiplier's slots (geometry above); groups lands at slot 1, abt at 2
                    case (geo_n)
                        3'd0: begin gm_a <= 32'(W[15:0]) + 32'(G - 1); gm_b <= 32'(RECIP); gm_d <= GM_GRP; end
                        3'd1: begin gm_a <= tiles; gm_b <= rb; gm_d <= GM_F32; end
                        3'd2: begin gm_a <= r_n[0]; gm_b <= r_k[0]; gm_d <= GM_R0; end
                        3'd3: begin
                            gm_a <= is_norm ? 32'(nt_all) : is_rope ? f1 : ncol;
                            gm_b <= is_norm ? abt : is_rope ? r_k[0] : 32'(nt_all);
                            gm_d <= GM_OWN;
                        end
                        3'd4: begin gm_a <= r_n[1]; gm_b <= r_k[1]; gm_d <= GM_R1; end
                        default: begin gm_a <= p0; gm_b <= r_k[0]; gm_d <= GM_ROPE0; end
                    endcase
                    if (geo_n == 3'd5) state <= S_CHECK;
                end
                S_CHECK: begin
                    cnt <= '0;
                    pre <= 1'b0;
                    bq <= '0;
                    btok <= '0;
                    wleft <= W;
                    b_trem <= 17'(nt_all);
                    b_nt <= 17'(nt_all) > 17'(MT) ? TKW'(MT) : TKW'(nt_all);
                    t <= '0;
                    tt <= '0;
                    nt <= 17'(nt_all) > 17'(MT) ? TKW'(MT) : TKW'(nt_all);
                    tile_base <= '0;
                    hd <= (LV + 1)'(r_k[0]);
                    sm <= VL == 1 || (is_rope && (r_k[0] & (VLW - 32'd1)) != 32'd0);
                    blk_left <= total_el;
                    bo <= '0;
                    pk_w <= '0;
                    if (ck != es_regs_pkg::ES_ERR_NONE) begin
                        done <= 1'b1;
                        err_code <= ck;
                        err_info <= {24'd0, op};
                        state <= S_IDLE;
                    end else if (is_norm) begin
                        mode <= M_NQ;
                        sbeat <= '0;
                        qoff <= '0;
                        // the gain, once per instruction, into the second buffer
                        rj_addr <= wgt_base + 40'(r_off[0][31:0]);
                        rj_left <= nog ? 32'd0 : 32'd1;
                        rj_stride <= '0;
                        rj_beats <= (W + 32'd3) >> 2;
                        // token 0's row right behind the gain (row_addr of t = 0 is 0)
                        rq_addr <= act_base + 40'(m_off[0]);
                        rq_left <= nt_all == 16'd1 ? 32'd1 : rb;
                        rq_beats <= nt_all == 16'd1 ? rb << LR : 32'd1 << LR;
                        rq_stride <= (32'(nt_all) > 32'(MT) ? 32'(MT) : 32'(nt_all)) << LU;
                        ex_left <= nog ? 32'd0 : W;
                        ex_skip <= '0;
                        ex_first <= 1'b1;
                        ex_byte <= 1'b0;
                        state <= S_NGAIN;
                    end else if (is_embed || is_rope) begin
                        mode <= is_embed ? M_EMBED : M_ROPE;
                        state <= S_TOK;
                    end else begin
                        mode <= is_add ? M_ADD : M_RELU2;
                        state <= S_BLK;
                    end
                end
                // ---- ADD / ACT_MUL: blocks of VMAX floats
                S_BLK: if (wj_left == 32'd0) begin
                    nel <= blk_left > 32'(VMAX) ? 32'(VMAX) : blk_left;
                    rj_addr <= act_base + 40'(m_off[1]) + 40'(bo);
                    rj_left <= 32'd1;
                    rj_stride <= '0;
                    rj_beats <= (blk_left > 32'(VMAX) ? 32'(VMAX) : blk_left) >> 2;
                    rq_addr <= act_base + 40'(m_off[2]) + 40'(bo);
                    rq_left <= 32'd1;
                    rq_stride <= '0;
                    rq_beats <= (blk_left > 32'(VMAX) ? 32'(VMAX) : blk_left) >> 2;
                    ex_left <= blk_left > 32'(VMAX) ? 32'(VMAX) : blk_left;
                    ex_skip <= '0;
                    ex_first <= 1'b1;
                    ex_byte <= 1'b0;
                    cnt <= '0;
                    state <= S_FILLX;
                end
                S_FILLX: begin
                    if (el_fire) cnt <= cnt + ex_n;
                    if (el_fire) amax_x <= fx_max;
                    if (ex_left == 32'd0 && is_norm && pipe_empty) begin
                        // max|x| and max|u| are complete: e for z, m for c; the next token's row
                        // is requested now (it waits in the read FIFO through pass 2)
                        if (t + 17'd1 != 17'(nt_all)) begin
                            rj_addr <= act_base + 40'(m_off[0]) + row_addr_n;
                            rj_left <= nt_n == TKW'(1) ? 32'd1 : rb;
                            rj_beats <= nt_n == TKW'(1) ? rb << LR : 32'd1 << LR;
                            rj_stride <= 32'(nt_n) << LU;
                        end
                        state <= S_CW;
                    end else if (ex_left == 32'd0 && is_norm) begin
                        // the last groups of u in the pipe
                    end else if (ex_left == 32'd0 && is_rope) begin
                        wj_addr <= act_base + 40'(m_off[0]) + row_addr;
                        wj_left <= row_cmds;
                        wj_beats <= row_beats;
                        wj_stride <= row_stride;
                        cnt <= '0;
                        ri <= '0;
                        state <= S_COMP;
                    end else if (ex_left == 32'd0) begin
                        ex_left <= nel;
                        ex_first <= 1'b1;
                        wj_addr <= act_base + 40'(m_off[0]) + 40'(bo);
                        wj_left <= 32'd1;
                        wj_beats <= nel >> 2;
                        cnt <= '0;
                        state <= S_STRM;
                    end
                end
                S_STRM: begin
                    if (iss) begin
                        cnt <= cnt + VLW;
                        bq <= bq + (LQ + 1)'(VL) == (LQ + 1)'(Q) ? '0 : bq + (LQ + 1)'(VL);
                        if (bq + (LQ + 1)'(VL) == (LQ + 1)'(Q)) begin
                            btok <= btok + TKW'(1) == b_nt ? '0 : btok + TKW'(1);
                            if (btok + TKW'(1) == b_nt) begin
                                wleft <= wlast ? W : wleft - 32'(Q);
                                if (wlast) begin
                                    b_trem <= b_trem - 17'(b_nt);
                                    b_nt <= b_trem - 17'(b_nt) > 17'(MT) ? TKW'(MT) : TKW'(b_trem - 17'(b_nt));
                                end
                            end
                        end
                    end
                    if (cnt == nel && pipe_empty) begin
                        blk_left <= blk_left - nel;
                        bo <= bo + (nel << 2);
                        state <= blk_left == nel ? S_WAITW : S_BLK;
                    end
                end
                // ---- per token (EMBED)
                S_TOK: if (wj_left == 32'd0) begin
                    if (t == 17'(nt_all)) begin
                        state <= S_WAITW;
                    end else if (is_rope) begin
                        state <= S_RPOS;
                    end else if (is_norm) begin
                        // the token's row (requested before) into the row buffer, max|x| and
                        // max|u| on the way
                        ex_left <= ncol;
                        ex_skip <= '0;
                        ex_first <= 1'b1;
                        cnt <= '0;
                        amax_x <= '0;
                        amax_u <= '0;
                        state <= S_FILLX;
                    end else begin
                        rj_addr <= act_base + 40'(m_off[1]) + 40'({t[16:2], 4'd0});
                        rj_left <= 32'd1;
                        rj_stride <= '0;
                        rj_beats <= 32'd1;
                        ex_left <= 32'd1;
                        ex_skip <= {t[1:0], 2'b00};
                        ex_first <= 1'b1;
                        ex_byte <= 1'b0;
                        state <= S_EID;
                    end
                end
                S_EID: if (el_fire) begin
                    id <= el_l[0];
                    gm_a <= el_l[0];
                    gm_b <= W;
                    gm_d <= GM_ROW;
                    state <= S_EIDCK;
                end
                S_EIDCK: begin
                    if (id >= r_n[0]) begin
                        fail <= es_regs_pkg::ES_ERR_RANGE;    // a token id past the table: earlier rows are written
                        state <= S_WAITW;
                    end else begin
                        rj_addr <= wgt_base + 40'(r_off[1][31:0]) + 40'({id[31:2], 4'd0});
                        rj_left <= 32'd1;
                        rj_beats <= 32'd1;
                        ex_left <= 32'd1;
                        ex_skip <= {id[1:0], 2'b00};
                        ex_first <= 1'b1;
                        pre <= 1'b0;
                        state <= S_EBETA;
                    end
                end
                S_EBETA: if (el_fire) begin
                    beta <= el_l[0];
                    ex_left <= W;
                    ex_skip <= emb_byte[3:0];
                    ex_first <= 1'b1;
                    ex_byte <= 1'b1;
                    wj_addr <= act_base + 40'(m_off[0]) + row_addr;
                    wj_left <= row_cmds;
                    wj_beats <= row_beats;
                    wj_stride <= row_stride;
                    cnt <= '0;
                    state <= S_EROW;
                end
                S_EROW: begin
                    if (iss) cnt <= cnt + VLW;
                    if (cnt == ncol && pipe_empty) state <= S_NEXT;
                end
                // ---- per token (ROPE): cos row, sin row into the second buffer, the row, the rotation
                S_RPOS: begin
                    rj_addr <= {rope_c[39:4], 4'd0};
                    rj_left <= 32'd1;
                    rj_beats <= (32'(rope_c[3:0]) + (32'(hd) << 2) + 32'd15) >> 4;
                    rq_addr <= {rope_s[39:4], 4'd0};
                    rq_left <= 32'd1;
                    rq_stride <= '0;
                    rq_beats <= (32'(rope_s[3:0]) + (32'(hd) << 2) + 32'd15) >> 4;
                    pre <= 1'b0;
                    ex_left <= 32'(hd);
                    ex_skip <= rope_c[3:0];
                    ex_first <= 1'b1;
                    ex_byte <= 1'b0;
                    cnt <= '0;
                    state <= S_RCOS;
                end
                S_RCOS: begin
                    if (el_fire) cnt <= cnt + ex_n;
                    if (ex_left == 32'd0) begin
                        cnt <= 32'(hd_al);
                        ex_left <= 32'(hd);
                        ex_skip <= rope_s[3:0];
                        ex_first <= 1'b1;
                        state <= S_RSIN;
                    end
                end
                S_RSIN: begin
                    if (el_fire) cnt <= cnt + ex_n;
                    if (ex_left == 32'd0 && pre) begin
                        ex_left <= ncol;
                        ex_skip <= '0;
                        ex_first <= 1'b1;
                        cnt <= '0;
                        state <= S_FILLX;
                    end
                end
                S_COMP: begin
                    if (iss) begin
                        cnt <= cnt + cstep;
                        ri <= ri + (LV + 1)'(cstep) == (hd << 1) ? '0 : ri + (LV + 1)'(cstep);
                    end
                    if (cnt == ncol && pipe_empty) state <= S_NEXT;
                end
                // ---- per token (NORM_QUANT): pass 1 is S_FILLX; max|u| on chip; c; pass 2; the scalars
                S_NGAIN: begin
                    if (el_fire) cnt <= cnt + ex_n;
                    if (ex_left == 32'd0) state <= S_TOK;
                end
                // the previous token's chain done and its s placed: e and m of this token, then c
                S_CW: if (!cb && !sw_pend) begin
                    kz <= 10'sd15 - frexp_e(amax_x);
                    m32 <= {1'b0, amax_u} > ACT_EPS ? {1'b0, amax_u} : ACT_EPS;
                    sc_step <= 4'd11;
                    sc_cnt <= '0;
                    cb <= 1'b1;
                    state <= S_SCAL;
                end
                S_SCAL: if (sc_fin) begin
                    // c: pass 2 next, its q row one command of abt beats
                    beta <= sc_y[31:0];
                    wj_addr <= act_base + 40'(m_off[1]) + 40'(qoff);
                    wj_left <= 32'd1;
                    wj_beats <= abt;
                    wj_stride <= '0;
                    cnt <= '0;
                    ssum <= '0;
                    qacc <= '0;
                    qn <= '0;
                    state <= S_NB;
                end
                S_NB: begin
                    if (iss) cnt <= cnt + VLW;
                    if (cnt >= nqe && pipe_empty) begin
                        // S is complete: the chain takes it (and e, m) while the next row comes in
                        sc_step <= nog ? 4'd7 : 4'd0;
                        sc_cnt <= '0;
                        cb <= 1'b1;
                        ts <= t;
                        qoff <= qoff + nbl;
                        state <= S_NEXT;
                    end
                end
                S_NEXT: begin
                    t <= t + 17'd1;
                    // ROPE: the next position's table row
                    if (is_rope) rowoff <= rowoff + (32'(hd) << 2);
                    if (tt + TKW'(1) == nt) begin
                        tt <= '0;
                        nt <= nt_next;
                        tile_base <= tile_base + ((rb << LMT) << LU);
                    end else begin
                        tt <= tt + TKW'(1);
                    end
                    state <= S_TOK;
                end
                S_WAITW: if (wj_left == 32'd0 && !ob_v && !wr_busy && pipe_empty && !cb && !sw_pend) begin
                    done <= 1'b1;
                    err_code <= wr_err ? es_regs_pkg::ES_ERR_AXI_WRITE : fail;
                    err_info <= wr_err ? {30'd0, wr_err_resp} : fail != es_regs_pkg::ES_ERR_NONE ? {24'd0, op} : 32'd0;
                    state <= S_IDLE;
                end
                S_ABORT: begin
                    rj_left <= '0;
                    rq_left <= '0;
                    wj_left <= '0;
                    cb <= 1'b0;
                    sw_pend <= 1'b0;
                    ex_left <= '0;
                    wn <= '0;
                    ob_v <= 1'b0;
                    v0 <= 1'b0;
                    pipe_n <= '0;
                    if (!rd_busy && !wr_busy) begin
                        done <= 1'b1;
                        err_code <= es_regs_pkg::ES_ERR_NONE;
                        err_info <= '0;
                        state <= S_IDLE;
                    end
                end
                default: state <= S_IDLE;
            endcase
        end
    end

    wire unused = &{1'b0, kv_base, kv_size, gi, instr[255:160], 
                    dv_busy, sq_busy, mu_busy, sr[63:32]};
endmodule
