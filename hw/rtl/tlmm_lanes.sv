// TLMM lookup lanes: T tables x Q copies. Every cycle an op brings the table words of T groups (one
// per table, in_tbl) and Q x T codes as index pairs with their signs (row q, group t at lane q*T + t);
// a group's table is split in two (tlmm_table_builder: the low GL = ceil(G/2) and the high
// GH = floor(G/2) activations, the word {high table, low table}), and each of the Q*T lanes selects one
// stored entry of each half (one lookup per lane per cycle, II = 1), negated where its sign is set (a
// ternary table stores only its lower half: see tlmm_wdecode); their sum is the entry of the whole
// group pattern. Each row sums its T lanes, scales the sum for bit-serial planes (<< in_shift, negated
// for the sign plane) and accumulates into its INT32 accumulator of token in_tok. in_first starts a
// fresh sum, in_last emits the row results (Q accumulators of token in_tok) on out_*. Non-stalling
// pipeline of 3 stages (4 with INT_DENSE: tlmm_engine's end_pipe follows it); whoever feeds it makes
// sure out_* can always be taken (the engine holds credits for its output FIFO).
// Masked groups (in_gmask[t] = 0: padding beyond K) contribute 0.
// Dense integer ops (INT_DENSE = 1, in_dense = 1; tlmm_engine "int-dense"): lane l's weight is the int8
// in_w[l*AW +: AW] and its activation the x_i of its group, i = in_shift (the column plane): a ternary
// half table holds x_i as the entry of the pattern -e_i (trit i = -1, the others 0), stored index
// Z - 3**i with Z = (3**n - 1)/2 (i < GL: the low table; else the high table, at i - GL), T[Z - 3**i] =
// -x_i. Every lane of table t reads that same entry, so it is one G:1 mux per table (not per lane),
// negated once per table, and each lane multiplies x_i by its weight (a DSP48E2 on UltraScale+); the row
// sum adds the products. The ternary entries of a dense op are masked to 0 and its plane shift is 0,
// so one adder tree serves both kinds of op. The multiply has a stage of its own (operands registered
// after the table read and the column mux, the product registered: the DSP's A/B and M registers; a
// table read, mux and unregistered multiply in one cycle would not make 250 MHz), and every op goes
// through it, so INT_DENSE adds one stage.
module tlmm_lanes #(
    parameter int G = 5,
    parameter int T = 4,
    parameter int Q = 4,
    parameter int AW = 8,
    parameter int ACCW = 32,
    parameter int MAXTOK = 1,
    parameter int TABLE_BINARY = 0,
    parameter int INT_DENSE = 0,      // 1: dense int8 ops (in_dense) through per-lane multipliers (TABLE_BINARY = 0)
    // derived: do not override
    parameter int GL = (G + 1) / 2,
    parameter int GH = G / 2,
    parameter int PL = (TABLE_BINARY != 0) ? 2 ** GL : (3 ** GL + 1) / 2,   // stored entries, low table
    parameter int PH = (TABLE_BINARY != 0) ? 2 ** GH : (3 ** GH + 1) / 2,   // high table
    parameter int P = PL + PH,                                               // entries per group word
    parameter int TW = AW + $clog2(GL + 1),
    parameter int IWL = (PL > 1) ? $clog2(PL) : 1,
    parameter int IWH = (PH > 1) ? $clog2(PH) : 1,
    parameter int IW = IWL + IWH,
    parameter int TIW = (MAXTOK > 1) ? $clog2(MAXTOK) : 1
) (
    input  logic              clk,
    input  logic              rst_n,
    input  logic              in_valid,
    input  logic [T*P*TW-1:0] in_tbl,
    input  logic [Q*T*IW-1:0] in_idx,
    input  logic [2*Q*T-1:0]  in_sgn,     // lane l: {high, low} at [2*l +: 2]
    input  logic [Q*T*AW-1:0] in_w,       // dense ops: the lanes' int8 weights (unused when INT_DENSE = 0)
    input  logic              in_dense,   // this op is dense (in_shift: the column); 0 when INT_DENSE = 0
    input  logic [T-1:0]      in_gmask,
    input  logic [TIW-1:0]    in_tok,
    input  logic [2:0]        in_shift,
    input  logic              in_neg,
    input  logic              in_first,
    input  logic              in_last,
    output logic              out_valid,
    output logic [TIW-1:0]    out_tok,
    output logic [Q*ACCW-1:0] out_acc
);
    // Row sum of 2T half entries, or with INT_DENSE of those and T products: |entry| <= 128 GL and
    // |x_i * w| <= 128 * 128, so PW = TW + AW bits hold a product (TSW, DSW below: the row's sums); the INT32
    // accumulator of a command holds ceil(K/G) chunks x G columns of sums with |acc| <= 2**14 K, which
    // fits ACCW = 32 for K < 2**17 (MAXK <= 4096 per command, and also a K-tiled linear's total K).
    localparam int PW = TW + AW;
    localparam int ZL = (3 ** GL - 1) / 2;   // ternary index of a half's all-zero pattern
    localparam int ZH = (3 ** GH - 1) / 2;

    // ---- stage 1: the 2*Q*T half lookups
    logic [2*Q*T*TW-1:0] ent, s1_ent;   // lane l: low entry at 2l, high at 2l + 1
    logic [2*Q*T-1:0]    s1_sgn;
    logic                s1_valid, s1_neg, s1_first, s1_last;
    logic [2:0]          s1_shift;
    logic [TIW-1:0]      s1_tok;
    // a build without the mode ignores the pin (a bench or shell that leaves it undriven stays exact)
    wire               dense_op = INT_DENSE != 0 && in_dense;
    wire  [T-1:0]      tmask = in_gmask & {T{!dense_op}};   // a dense op reads no ternary entry

    // Each lane half is a PL:1 (PH:1) mux of TW-bit entries over its own half table: the half's word is
    // sliced at a constant offset, then the entry is a part-select at idx * TW, computed without
    // truncation (OW holds the full product) so that synthesis (Yosys peepopt shiftmul) turns it into a
    // mux tree. A variable part-select over the whole T-table bus, offset (t*P + idx)*TW, became a barrel
    // shifter T*P*TW bits wide with a multiplier (4-8x the LUTs); an array of entries indexed by idx
    // synthesizes the same as this but simulates 4x slower in Icarus.
    for (genvar t = 0; t < T; t++) begin : g_tab
        for (genvar h = 0; h < 2; h++) begin : g_half
            localparam int NP = (h == 0) ? PL : PH;
            localparam int NW = (h == 0) ? IWL : IWH;
            localparam int OFS = (h == 0) ? 0 : PL;
            localparam int OW = NW + $clog2(TW);
            localparam int PAD = (1 << OW) - NP * TW;   // the word zero-padded to every offset idx * TW can take
            logic [(1 << OW)-1:0] tab;
            if (PAD > 0) begin : g_pad
                assign tab = {{PAD{1'b0}}, in_tbl[(t*P + OFS)*TW +: NP*TW]};
            end else begin : g_nopad
                assign tab = in_tbl[(t*P + OFS)*TW +: NP*TW];
            end
            for (genvar q = 0; q < Q; q++) begin : g_row
                logic [OW-1:0] off;
                assign off = OW'(in_idx[(q*T + t)*IW + h*IWL +: NW]) * OW'(TW);
                assign ent[(2*(q*T + t) + h)*TW +: TW] = tmask[t] ? tab[off +: TW] : '0;
            end
        end
    end

    // dense ops: entry -x_i of table t (i = in_shift), times each lane's int8 weight; m_*: the inputs of
    // stage 2 (stage 1's registers, or with INT_DENSE the multiply stage's)
    logic [Q*T*PW-1:0] m_prod;
    logic [2*Q*T*TW-1:0] m_ent;
    logic [2*Q*T-1:0]    m_sgn;
    logic              m_valid, m_neg, m_first, m_last;
    logic [2:0]        m_shift;
    logic [TIW-1:0]    m_tok;
    if (INT_DENSE != 0) begin : g_dense
        for (genvar t = 0; t < T; t++) begin : g_col
            logic signed [TW-1:0] xn;   // -x_i
            always_comb begin
                xn = '0;
                for (int i = 0; i < GL; i++) begin
                    if (in_shift == 3'(i)) xn = in_tbl[(t*P + ZL - 3 ** i)*TW +: TW];
                end
                for (int i = 0; i < GH; i++) begin
                    if (in_shift == 3'(GL + i)) xn = in_tbl[(t*P + PL + ZH - 3 ** i)*TW +: TW];
                end
                if (!(dense_op && in_gmask[t])) xn = '0;
            end
            logic signed [TW-1:0] s1_x;   // x_i: negated here, once per table, not in every lane's sum
            always_ff @(posedge clk) s1_x <= -xn;
            for (genvar q = 0; q < Q; q++) begin : g_mul
                logic signed [AW-1:0] s1_w;
                logic signed [PW-1:0] pr;   // operands sign-extended to PW by the assignment: exact
                always_ff @(posedge clk) s1_w <= in_w[(q*T + t)*AW +: AW];
                assign pr = s1_x * s1_w;
                always_ff @(posedge clk) begin
                    m_prod[(q*T + t)*PW +: PW] <= pr;
                end
            end
        end
        // the lookup side waits a stage beside the multiply
        always_ff @(posedge clk) begin
            if (!rst_n) m_valid <= 1'b0;
            else m_valid <= s1_valid;
        end
        always_ff @(posedge clk) begin
            m_ent <= s1_ent;
            m_sgn <= s1_sgn;
            m_tok <= s1_tok;
            m_shift <= s1_shift;
            m_neg <= s1_neg;
            m_first <= s1_first;
            m_last <= s1_last;
        end
    end else begin : g_nodense
        assign m_prod = '0;
        assign m_valid = s1_valid;
        assign m_ent = s1_ent;
        assign m_sgn = s1_sgn;
        assign m_tok = s1_tok;
        assign m_shift = s1_shift;
        assign m_neg = s1_neg;
        assign m_first = s1_first;
        assign m_last = s1_last;
        wire unused_dense = &{1'b0, in_w, in_dense};
    end

    always_ff @(posedge clk) begin
        if (!rst_n) s1_valid <= 1'b0;
        else s1_valid <= in_valid;
    end

    always_ff @(posedge clk) begin
        s1_ent <= ent;
        for (int l = 0; l < Q*T; l++) s1_sgn[2*l +: 2] <= in_sgn[2*l +: 2] & {2{tmask[l % T]}};   // a masked group's entries are 0: no carry-in either
        s1_tok <= in_tok;
        s1_shift <= dense_op ? 3'd0 : in_shift;
        s1_neg <= in_neg;
        s1_first <= in_first;
        s1_last <= in_last;
    end

    // ---- stage 2: per-row sum of the signed entries, plane weight
    // The sign plane's negation is folded into the entries' signs, and each negation is -e = ~e + 1:
    // the inversions sit in the adders' LUTs and the +1s are the sum's carry-ins (one adder tree, no
    // separate negating adder behind it). Only a ternary/bit-serial op has a plane shift and only a
    // dense op has products, and the other kind's terms are exactly 0 (masked entries and signs, a zero
    // column entry), so the narrow entry sum alone goes through the shifter and the two sums merge by
    // OR: a 32-bit shifter behind one adder of both cost 3.3k more LUT at Q = 64 (Yosys).
    localparam int TSW = TW + $clog2(2 * T + 1);   // the signed entries' sum
    localparam int VW = TSW + 7;                   // shifted by a bit plane 0..7
    localparam int DSW = PW + $clog2(T + 1);       // the products' sum
    logic [Q*ACCW-1:0] val, s2_val;
    logic              s2_valid, s2_first, s2_last;
    logic [TIW-1:0]    s2_tok;

    for (genvar q = 0; q < Q; q++) begin : g_sum
        logic signed [TSW-1:0] tsum;
        logic signed [VW-1:0]  tsh;
        logic signed [DSW-1:0] dsum;
        logic [2*T-1:0] neg;
        assign neg = m_sgn[2*q*T +: 2*T] ^ {2*T{m_neg}};
        always_comb begin
            tsum = '0;
            for (int e = 0; e < 2*T; e++) begin
                tsum = tsum + (TSW'($signed(m_ent[(2*q*T + e)*TW +: TW])) ^ {TSW{neg[e]}}) + TSW'(neg[e]);
            end
            dsum = '0;
            if (INT_DENSE != 0) begin
                for (int t = 0; t < T; t++) dsum = dsum + DSW'($signed(m_prod[(q*T + t)*PW +: PW]));
            end
        end
        assign tsh = VW'(tsum) <<< m_shift;
        assign val[q*ACCW +: ACCW] = ACCW'(tsh) | ACCW'(dsum);
    end

    always_ff @(posedge clk) begin
        if (!rst_n) s2_valid <= 1'b0;
        else s2_valid <= m_valid;
    end

    always_ff @(posedge clk) begin
        s2_val <= val;
        s2_tok <= m_tok;
        s2_first <= m_first;
        s2_last <= m_last;
    end

    // ---- stage 3: accumulate per (row, token)
    logic [ACCW-1:0] acc [Q][MAXTOK];

    for (genvar q = 0; q < Q; q++) begin : g_acc
        logic [ACCW-1:0] nxt;
        assign nxt = (s2_first ? '0 : acc[q][s2_tok]) + s2_val[q*ACCW +: ACCW];
        always_ff @(posedge clk) begin
            if (s2_valid) begin
                acc[q][s2_tok] <= nxt;
            end
            if (s2_valid && s2_last) begin
                out_acc[q*ACCW +: ACCW] <= nxt;
            end
        end
    end

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            out_valid <= 1'b0;
        end else begin
            out_valid <= s2_valid && s2_last;
        end
    end

    always_ff @(posedge clk) begin
        if (s2_valid && s2_last) out_tok <= s2_tok;
    end
endmodule
