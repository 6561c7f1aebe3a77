// TLMM engine: table builder + table memories + weight-code decode + lookup lanes + result FIFO.
//
// One command = one integer matmul acc[tok, n] = sum_k a[tok, k] * w[n, k] for ntok tokens
// (ntok = 1: decode GEMV; ntok > 1: prefill GEMM over a tile of tokens), in two phases:
//   INGEST: ntok * ceil(K/G) activation beats (one group of G int8 per beat, token by token; lanes
//           past K in the last group are ignored: zero padding). Every beat becomes a group word of
//           two tables, over the low ceil(G/2) and the high floor(G/2) activations (the lower half of
//           each sign-symmetric ternary table: 14 + 5 entries at G = 5; or 2**n binary entries each),
//           written to table memory t = group % T.
//   LOOKUP: weight beats of Q*T codes, in the order
//             for row batch rb (rows rb*Q .. rb*Q+Q-1), for plane b (bit-serial; 1 plane ternary),
//             for chunk c (groups c*T .. c*T+T-1): lane q*T + t = code of row rb*Q+q, group c*T+t.
//           Dense integer weights (INT_DENSE = 1, cmd bit 55, "int-dense"): CB = 8-bit slots of int8
//           weights, G column planes instead of bit planes: for row batch rb, for column i (0..G-1),
//           for chunk c: lane q*T + t = w[row rb*Q+q][G*(c*T+t) + i]; each lane multiplies its weight
//           by x[G*(c*T+t) + i], read from the same group tables (tlmm_lanes), so a beat is Q*T
//           multiply-accumulates and a row batch G beats per chunk (INT8 as bit planes: 8).
//           Every beat is looked up once per token (GEMM: the beat is reused ntok times), each
//           lane one lookup per cycle. Groups past ceil(K/G) are masked to 0; rows past N (the
//           last row batch) produce results the host drops.
//   Results: per row batch, per token one beat of Q INT32 accumulators (row rb*Q+q at
//           [q*ACCW +: ACCW]), tuser = token, tlast on the command's last beat.
//   K tiles (a linear with K > MAXK is several commands over the same N rows and tokens): the
//           K-tile accumulator (KROWS rows x MAXTOK tokens of INT32, one word of Q sums per row
//           batch and token, behind the result FIFO) adds the stored sums of the earlier tiles to
//           a command's sums (cmd bit 53) and/or keeps them instead of sending them (bit 54), so
//           only the last tile's results leave the engine: the integer sum over all of K, exactly
//           (two's-complement addition is associative, so tiling changes no bit).
// Command word (s_cmd_tdata, fixed layout): [15:0] K, [39:16] N, [47:40] ntok (1..MAXTOK),
//   [51:48] weight bits (bit-serial, 2..8), [52] bit-serial (0: ternary G-index codes),
//   [53] add the K-tile accumulator, [54] keep the sums in it (no results); N <= KROWS with 53/54,
//   [55] dense int8 weights (only with INT_DENSE = 1; bits 52 and 51:48 are then ignored).
// Every boundary is valid/ready; the lookup pipeline never stalls internally: an op that completes
// a result is only issued while the result FIFO has a free slot reserved for it.
module tlmm_engine #(
    parameter int G = 5,
    parameter int T = 4,
    parameter int Q = 4,
    parameter int AW = 8,
    parameter int ACCW = 32,
    parameter int MAXK = 4096,
    parameter int MAXTOK = 8,
    parameter int TABLE_BINARY = 0,   // 1: bit-serial-only engine with 2**G-entry tables
    parameter int OFIFO_DEPTH = 16,   // power of two
    parameter int KROWS = 0,          // rows of a K-tiled command the accumulator holds (0: none; the shell: ES_KROWS)
    parameter int INT_DENSE = 0,      // 1: dense int8 weights (cmd bit 55): a multiplier per lane; needs
                                      // TABLE_BINARY = 0 and CB = AW = 8 (G = 5: a slot is one int8)
    // derived: do not override
    // a group's table is split in two (tlmm_table_builder): the low ceil(G/2) and high floor(G/2) weights
    parameter int GL = (G + 1) / 2,
    parameter int GH = G / 2,
    parameter int PL = (TABLE_BINARY != 0) ? 2 ** GL : (3 ** GL + 1) / 2,
    parameter int PH = (TABLE_BINARY != 0) ? 2 ** GH : (3 ** GH + 1) / 2,
    parameter int P = PL + PH,                                 // stored entries per group word
    parameter int TW = AW + $clog2(GL + 1),
    parameter int CB = (TABLE_BINARY != 0) ? G : $clog2(3 ** G),
    parameter int IW = ((PL > 1) ? $clog2(PL) : 1) + ((PH > 1) ? $clog2(PH) : 1),   // a lane's index pair
    parameter int TIW = (MAXTOK > 1) ? $clog2(MAXTOK) : 1,
    parameter int CH = ((MAXK + G - 1) / G + T - 1) / T,   // chunks (table words) per token per memory
    parameter int DEPTH = MAXTOK * CH,
    parameter int AD = (DEPTH > 1) ? $clog2(DEPTH) : 1,
    parameter int CW = (CH > 1) ? $clog2(CH) : 1,
    parameter int BW = (T > 1) ? $clog2(T) : 1,
    parameter int KD = ((KROWS > 0 ? KROWS : 1) + Q - 1) / Q * MAXTOK,   // accumulator words
    parameter int KAD = (KD > 1) ? $clog2(KD) : 1
) (
    input  logic              clk,
    input  logic              rst_n,
    // command
    input  logic              s_cmd_tvalid,
    output logic              s_cmd_tready,
    input  logic [63:0]       s_cmd_tdata,
    // activations: one group of G int8 per beat
    input  logic              s_act_tvalid,
    output logic              s_act_tready,
    input  logic [G*AW-1:0]   s_act_tdata,
    // weight codes: Q*T codes of CB bits per beat
    input  logic              s_w_tvalid,
    output logic              s_w_tready,
    input  logic [Q*T*CB-1:0] s_w_tdata,
    // results: Q accumulators per beat
    output logic              m_res_tvalid,
    input  logic              m_res_tready,
    output logic [Q*ACCW-1:0] m_res_tdata,
    output logic [TIW-1:0]    m_res_tuser,
    output logic              m_res_tlast,
    // status
    output logic              busy,
    output logic              err_code    // an invalid ternary code was seen (sticky per command)
);
    localparam int FAW = $clog2(OFIFO_DEPTH);

    typedef enum logic [1:0] {IDLE, INGEST, LOOKUP} phase_t;
    phase_t phase;

    // ---------------- command
    logic [15:0] cfg_k;
    logic [23:0] cfg_n;
    logic [7:0]  cfg_ntok_m1;   // ntok - 1
    logic [3:0]  cfg_planes;
    logic        cfg_bitserial;
    logic        cfg_dense;

    assign s_cmd_tready = phase == IDLE;

    // ---------------- ingest: activations -> table builder -> table memories
    logic [16:0]   a_elem;       // first activation index of the current group
    logic [BW-1:0] a_bank;
    logic [CW-1:0] a_chunk;
    logic [AD-1:0] a_base;       // a_tok * CH
    logic [7:0]    a_tok;
    logic [BW-1:0] last_bank;    // bank and chunk of the last group (same for every token)
    logic [CW-1:0] last_chunk;

    logic            b_in_ready, b_valid;
    logic [G*AW-1:0] b_in_data;
    logic [P*TW-1:0] b_data;
    logic [BW+AD-1:0] b_user;
    wire a_fire = s_act_tvalid && s_act_tready;
    wire a_last_group = (a_elem + 17'(G)) >= {1'b0, cfg_k};

    assign s_act_tready = (phase == INGEST) && b_in_ready;

    for (genvar i = 0; i < G; i++) begin : g_mask
        assign b_in_data[i*AW +: AW] = ((a_elem + 17'(i)) < {1'b0, cfg_k}) ? s_act_tdata[i*AW +: AW] : '0;
    end

    tlmm_table_builder #(.G(G), .AW(AW), .BINARY(TABLE_BINARY), .UW(BW + AD)) u_builder (
        .clk, .rst_n,
        .a_valid(a_fire), .a_ready(b_in_ready), .a_data(b_in_data), .a_user({a_bank, AD'(a_base + AD'(a_chunk))}),
        .t_valid(b_valid), .t_ready(1'b1), .t_data(b_data), .t_user(b_user)
    );

    // ---------------- weights: input-side beat counters -> decode
    logic [CW-1:0] wi_chunk;
    logic [3:0]    wi_plane;
    logic [23:0]   wi_row;
    logic          wi_done;
    logic          dec_in_ready;
    wire w_fire = s_w_tvalid && s_w_tready;
    wire wi_last_chunk = wi_chunk == last_chunk;
    wire wi_last_plane = wi_plane == cfg_planes - 4'd1;
    wire wi_last_batch = (wi_row + 24'(Q)) >= cfg_n;

    assign s_w_tready = (phase == LOOKUP) && !wi_done && dec_in_ready;

    // beat metadata: {end, last, first, lastchunk, dense, neg, shift[2:0] (dense: the column), chunk}
    localparam int MW = CW + 9;
    logic [MW-1:0] wi_meta;
    assign wi_meta = {wi_last_chunk && wi_last_plane && wi_last_batch,
                      wi_last_chunk && wi_last_plane,
                      wi_chunk == '0 && wi_plane == '0,
                      wi_last_chunk,
                      cfg_dense,
                      cfg_bitserial && wi_last_plane,
                      wi_plane[2:0],
                      wi_chunk};

    logic              d_valid, d_ready, d_bad;
    logic [Q*T*IW-1:0] d_idx;
    logic [2*Q*T-1:0]  d_sgn;
    logic [MW-1:0]     d_meta;
    logic [Q*T*AW-1:0] d_w;      // dense: the beat's int8 weights (the codes as they came)

    // A dense beat's slots are int8 weights, not codes: they ride along the decode stage as its sideband
    // (the decoder sees them as bit-serial codes, so no slot raises err_code) and its indices are unused.
    if (INT_DENSE != 0) begin : g_wdense
        tlmm_wdecode #(.G(G), .L(Q*T), .TABLE_BINARY(TABLE_BINARY), .UW(MW + Q*T*AW)) u_decode (
            .clk, .rst_n, .bitserial(cfg_bitserial || cfg_dense),
            .w_valid(w_fire), .w_ready(dec_in_ready), .w_codes(s_w_tdata), .w_user({s_w_tdata[Q*T*AW-1:0], wi_meta}),
            .d_valid, .d_ready, .d_idx, .d_sgn, .d_bad, .d_user({d_w, d_meta})
        );
    end else begin : g_wcodes
        tlmm_wdecode #(.G(G), .L(Q*T), .TABLE_BINARY(TABLE_BINARY), .UW(MW)) u_decode (
            .clk, .rst_n, .bitserial(cfg_bitserial),
            .w_valid(w_fire), .w_ready(dec_in_ready), .w_codes(s_w_tdata), .w_user(wi_meta),
            .d_valid, .d_ready, .d_idx, .d_sgn, .d_bad, .d_user(d_meta)
        );
        assign d_w = '0;
    end

    // ---------------- issue stage: one op per token per beat
    logic              s0_valid;
    logic [Q*T*IW-1:0] s0_idx;
    logic [2*Q*T-1:0]  s0_sgn;
    logic [MW-1:0]     s0_meta;
    logic [Q*T*AW-1:0] s0_w;
    logic [7:0]        s0_tok;
    logic              s0_tok_last;   // s0_tok == ntok - 1, registered: the weight stream's ready
                                      // (s_w_tready) hangs off it, so no compare sits on that path
    logic [AD-1:0]     s0_addr;
    logic [FAW:0]      pend;      // result slots reserved: in flight or in the FIFO

    wire s0_end = s0_meta[MW-1];
    wire s0_last = s0_meta[MW-2];
    wire s0_first = s0_meta[MW-3];
    wire s0_lastchunk = s0_meta[MW-4];
    wire s0_dense = s0_meta[MW-5];
    wire s0_neg = s0_meta[MW-6];
    wire [2:0] s0_shift = s0_meta[CW +: 3];
    wire issue = s0_valid && (!s0_last || pend < (FAW + 1)'(OFIFO_DEPTH));
    wire s0_beat_done = issue && s0_tok_last;
    assign d_ready = !s0_valid || s0_beat_done;

    logic [T-1:0] s0_gmask;
    for (genvar t = 0; t < T; t++) begin : g_gmask
        if (t == 0) begin : g_first
            assign s0_gmask[t] = 1'b1;        // a chunk always holds at least one real group
        end else begin : g_rest
            assign s0_gmask[t] = !s0_lastchunk || (BW'(t) <= last_bank);
        end
    end

    // ---------------- table memories
    logic [T*P*TW-1:0] tbl;
    for (genvar t = 0; t < T; t++) begin : g_mem
        tlmm_table_mem #(.W(P*TW), .DEPTH(DEPTH)) u_mem (
            .clk,
            .wr_en(b_valid && b_user[AD +: BW] == BW'(t)), .wr_addr(b_user[AD-1:0]), .wr_data(b_data),
            .rd_en(issue), .rd_addr(s0_addr), .rd_data(tbl[t*P*TW +: P*TW])
        );
    end

    // stage aligned with the memory read data
    logic              s1_valid, s1_neg, s1_first, s1_last, s1_end, s1_dense;
    logic [Q*T*AW-1:0] s1_w;
    logic [Q*T*IW-1:0] s1_idx;
    logic [2*Q*T-1:0]  s1_sgn;
    logic [T-1:0]      s1_gmask;
    logic [TIW-1:0]    s1_tok;
    logic [2:0]        s1_shift;

    always_ff @(posedge clk) begin
        if (!rst_n) s1_valid <= 1'b0;
        else s1_valid <= issue;
    end

    always_ff @(posedge clk) begin
        if (issue) begin
            s1_idx <= s0_idx;
            s1_sgn <= s0_sgn;
            s1_gmask <= s0_gmask;
            s1_tok <= TIW'(s0_tok);
            s1_shift <= s0_shift;
            s1_neg <= s0_neg;
            s1_dense <= s0_dense;
            s1_w <= s0_w;
            s1_first <= s0_first;
            s1_last <= s0_last;
            s1_end <= s0_end && s0_tok_last;
        end
    end

    // ---------------- lanes
    logic              l_valid;
    logic [TIW-1:0]    l_tok;
    logic [Q*ACCW-1:0] l_acc;

    tlmm_lanes #(.G(G), .T(T), .Q(Q), .AW(AW), .ACCW(ACCW), .MAXTOK(MAXTOK), .TABLE_BINARY(TABLE_BINARY),
                 .INT_DENSE(INT_DENSE)) u_lanes (
        .clk, .rst_n,
        .in_valid(s1_valid), .in_tbl(tbl), .in_idx(s1_idx), .in_sgn(s1_sgn), .in_w(s1_w), .in_dense(s1_dense),
        .in_gmask(s1_gmask), .in_tok(s1_tok),
        .in_shift(s1_shift), .in_neg(s1_neg), .in_first(s1_first), .in_last(s1_last),
        .out_valid(l_valid), .out_tok(l_tok), .out_acc(l_acc)
    );

    // the end-of-command flag follows the lanes' pipeline (3 stages, 4 with INT_DENSE)
    localparam int LLAT = (INT_DENSE != 0) ? 4 : 3;
    logic [LLAT-1:0] end_pipe;
    always_ff @(posedge clk) begin
        if (!rst_n) end_pipe <= '0;
        else end_pipe <= {end_pipe[LLAT-2:0], s1_valid && s1_end};
    end

    // ---------------- result FIFO (with each result the command's K-tile mode: add, keep)
    logic         f_in_ready, f_valid, f_last, f_add, f_keep, f_pop;
    logic [FAW:0] f_count;
    logic [TIW-1:0] f_tok;
    logic [Q*ACCW-1:0] f_data;
    logic         cfg_kadd, cfg_keep;
    tlmm_fifo #(.W(Q*ACCW + TIW + 3), .DEPTH(OFIFO_DEPTH)) u_ofifo (
        .clk, .rst_n,
        .in_valid(l_valid), .in_ready(f_in_ready), .in_data({cfg_kadd, cfg_keep, end_pipe[LLAT-1], l_tok, l_acc}),
        .out_valid(f_valid), .out_ready(f_pop), .out_data({f_add, f_keep, f_last, f_tok, f_data}),
        .count(f_count)
    );

    // ---------------- K-tile accumulator: word (row batch, token) at rb*MAXTOK + token. The FIFO head's
    // word is read (registered), the next cycle it is added (f_add) and either written back (f_keep) or
    // registered as the result; one result per two cycles, below the dequantize stage's Q/4 per result
    // (and one per chunk of lookups). Row batches are told apart by the token order (0..ntok-1 per row
    // batch), so no command field is read after the command was accepted: back-to-back commands are safe.
    logic            k_ok;         // the head's word was read last cycle
    logic            k_first;      // the head is the first result of its command
    logic [KAD-1:0]  k_base;       // rb*MAXTOK of the previous result
    logic [Q*ACCW-1:0] k_rd, k_sum;
    logic            o_valid, o_last;
    logic [TIW-1:0]  o_tok;
    logic [Q*ACCW-1:0] o_data;
    wire [KAD-1:0] k_hbase = (f_tok == '0 && !k_first) ? k_base + KAD'(MAXTOK) : k_base;
    wire [KAD-1:0] k_addr = k_hbase + KAD'(f_tok);
    wire o_free = !o_valid || m_res_tready;
    assign f_pop = f_valid && k_ok && (f_keep || o_free);
    for (genvar q = 0; q < Q; q++) begin : g_kadd
        assign k_sum[q*ACCW +: ACCW] = f_data[q*ACCW +: ACCW] + (f_add ? k_rd[q*ACCW +: ACCW] : '0);
    end
    if (KROWS > 0) begin : g_kacc
        tlmm_table_mem #(.W(Q*ACCW), .DEPTH(KD)) u_kmem (
            .clk,
            .wr_en(f_pop && f_keep), .wr_addr(k_addr), .wr_data(k_sum),
            .rd_en(1'b1), .rd_addr(k_addr), .rd_data(k_rd)
        );
    end else begin : g_nokacc
        assign k_rd = '0;
        wire unused_k = &{1'b0, k_addr};
    end
    always_ff @(posedge clk) begin
        if (!rst_n) begin
            k_ok <= 1'b0;
            k_first <= 1'b1;
            k_base <= '0;
            o_valid <= 1'b0;
        end else begin
            k_ok <= f_valid && !f_pop;
            if (f_pop) begin
                k_first <= f_last;
                k_base <= f_last ? '0 : k_hbase;
            end
            if (o_free) o_valid <= f_pop && !f_keep;
        end
        if (o_free && f_pop) begin
            o_data <= k_sum;
            o_tok <= f_tok;
            o_last <= f_last;
        end
    end
    assign m_res_tvalid = o_valid;
    assign m_res_tdata = o_data;
    assign m_res_tuser = o_tok;
    assign m_res_tlast = o_last;

    wire res_fire = f_pop;

    // ---------------- control
    always_ff @(posedge clk) begin
        if (!rst_n) begin
            phase <= IDLE;
            s0_valid <= 1'b0;
            pend <= '0;
            err_code <= 1'b0;
            wi_done <= 1'b0;
        end else begin
            // pending result slots
            if ((issue && s0_last) && !res_fire) pend <= pend + 1'b1;
            else if (!(issue && s0_last) && res_fire) pend <= pend - 1'b1;

            case (phase)
                IDLE: if (s_cmd_tvalid) begin
                    cfg_k <= s_cmd_tdata[15:0];
                    cfg_n <= s_cmd_tdata[39:16];
                    cfg_ntok_m1 <= s_cmd_tdata[47:40] - 8'd1;
                    cfg_planes <= (s_cmd_tdata[55] && INT_DENSE != 0) ? 4'(G)
                                  : s_cmd_tdata[52] ? s_cmd_tdata[51:48] : 4'd1;
                    cfg_bitserial <= s_cmd_tdata[52] && !(s_cmd_tdata[55] && INT_DENSE != 0);
                    cfg_dense <= s_cmd_tdata[55] && INT_DENSE != 0;
                    cfg_kadd <= s_cmd_tdata[53] && KROWS > 0;
                    cfg_keep <= s_cmd_tdata[54] && KROWS > 0;
                    err_code <= 1'b0;
                    a_elem <= '0;
                    a_bank <= '0;
                    a_chunk <= '0;
                    a_base <= '0;
                    a_tok <= '0;
                    wi_chunk <= '0;
                    wi_plane <= '0;
                    wi_row <= '0;
                    wi_done <= 1'b0;
                    phase <= INGEST;
                end
                INGEST: if (a_fire) begin
                    if (a_last_group) begin
                        last_bank <= a_bank;
                        last_chunk <= a_chunk;
                        a_elem <= '0;
                        a_bank <= '0;
                        a_chunk <= '0;
                        a_base <= a_base + AD'(CH);
                        a_tok <= a_tok + 8'd1;
                        if (a_tok == cfg_ntok_m1) phase <= LOOKUP;
                    end else begin
                        a_elem <= a_elem + 17'(G);
                        if (a_bank == BW'(T - 1)) begin
                            a_bank <= '0;
                            a_chunk <= a_chunk + 1'b1;
                        end else begin
                            a_bank <= a_bank + 1'b1;
                        end
                    end
                end
                LOOKUP: if (s0_beat_done && s0_end) begin
                    phase <= IDLE;
                end
                default: phase <= IDLE;
            endcase

            if (w_fire) begin
                if (wi_last_chunk) begin
                    wi_chunk <= '0;
                    if (wi_last_plane) begin
                        wi_plane <= '0;
                        wi_row <= wi_row + 24'(Q);
                        if (wi_last_batch) wi_done <= 1'b1;
                    end else begin
                        wi_plane <= wi_plane + 4'd1;
                    end
                end else begin
                    wi_chunk <= wi_chunk + 1'b1;
                end
            end

            if (d_valid && d_ready) begin
                s0_valid <= 1'b1;
                if (d_bad) err_code <= 1'b1;
            end else if (s0_beat_done) begin
                s0_valid <= 1'b0;
            end
        end
    end

    always_ff @(posedge clk) begin
        if (d_valid && d_ready) begin
            s0_idx <= d_idx;
            s0_sgn <= d_sgn;
            s0_meta <= d_meta;
            s0_w <= d_w;
            s0_tok <= '0;
            s0_tok_last <= cfg_ntok_m1 == 8'd0;
            s0_addr <= AD'(d_meta[CW-1:0]);
        end else if (issue) begin
            s0_tok <= s0_tok + 8'd1;
            s0_tok_last <= s0_tok + 8'd1 == cfg_ntok_m1;
            s0_addr <= s0_addr + AD'(CH);
        end
    end

    assign busy = (phase != IDLE) || s0_valid || s1_valid || (pend != '0) || o_valid;

    // f_in_ready is guaranteed by the pend credits; f_count is for debug only; command bits 63:55
    // are reserved; with T = 1 every chunk is one group and the group mask is constant
    wire unused = &{1'b0, f_in_ready, f_count, a_tok, s_cmd_tdata[63:56], last_bank, s0_lastchunk};
endmodule
