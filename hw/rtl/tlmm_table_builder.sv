// Online TLMM table builder, split tables.
//
// A group of G signed activations is two parts, the low GL = ceil(G/2) and the high GH = floor(G/2)
// activations (G = 5: 3 + 2), and each part gets its own table of every weight-pattern sum over its
// activations:
//   ternary (BINARY = 0): T[c] = sum_i (digit3_i(c) - 1) * a_i,  c in [0, (3**n + 1)/2)
//   binary  (BINARY = 1): B[c] = sum_i  bit_i(c)          * a_i,  c in [0, 2**n)
// for the part's n activations, exactly as edgestream.tlmm.build_ternary_tables /
// build_binary_tables of that part (low table entry c at bits [c*TW +: TW] of t_data, the high table's
// entry c at [(PL + c)*TW +: TW]). A lane adds one entry of each (tlmm_lanes), which is the entry of the
// whole G-pattern table: the same integer, so the split changes no bit of a result. What it changes
// is the cost: 14 + 5 stored entries instead of 122 at G = 5, so the table word, the table memory and
// every lane's mux are ~6x smaller (docs/hardware.md, "Split tables").
// A ternary table is sign-symmetric, T[3**n - 1 - c] = -T[c] (every trit negated), so only its lower
// half up to the all-zero pattern c = (3**n - 1)/2 is built and stored: tlmm_wdecode folds the upper
// codes onto it with a sign, tlmm_lanes negates. The sums are formed level by level (level i extends
// every pattern of weights 0..i-1 by the R possible values of weight i) and one whole group's tables
// leave per cycle (II = 1). One register stage; a_user rides along unchanged (the engine puts the
// table-memory write address there).
// TW = AW + clog2(GL + 1): an entry reaches +128 GL (every activation -128, every weight -1), which
// AW + clog2(GL) bits do not hold when GL is a power of two.
module tlmm_table_builder #(
    parameter int G = 5,        // group size (2..6)
    parameter int AW = 8,       // activation width (signed)
    parameter int BINARY = 0,   // 0: ternary entries, 1: binary entries (bit-serial)
    parameter int UW = 1,       // sideband width
    // derived: do not override
    parameter int R = (BINARY != 0) ? 2 : 3,
    parameter int GL = (G + 1) / 2,
    parameter int GH = G / 2,
    parameter int PL = (BINARY != 0) ? R ** GL : (R ** GL + 1) / 2,   // entries built and stored, low part
    parameter int PH = (BINARY != 0) ? R ** GH : (R ** GH + 1) / 2,   // high part
    parameter int P = PL + PH,
    parameter int TW = AW + $clog2(GL + 1)
) (
    input  logic              clk,
    input  logic              rst_n,
    // activation group in
    input  logic              a_valid,
    output logic              a_ready,
    input  logic [G*AW-1:0]   a_data,
    input  logic [UW-1:0]     a_user,
    // table out
    output logic              t_valid,
    input  logic              t_ready,
    output logic [P*TW-1:0]   t_data,
    output logic [UW-1:0]     t_user
);
    // Part h (0: low, 1: high) over activations A0 .. A0 + n - 1. Level i holds R**(i+1) entries; entry
    // c of level i extends pattern c % R**i of level i-1 by value c / R**i of weight i. Every entry is its
    // own signal (g_part[h].g_level[i].g_entry[c].e): a plain feed-forward chain for every simulator (one
    // wide vector per level makes Verilator see a false loop and makes Icarus re-evaluate every
    // part-select on each change).
    logic [P*TW-1:0] tab;
    for (genvar h = 0; h < 2; h++) begin : g_part
        localparam int NA = (h == 0) ? GL : GH;   // activations of the part
        localparam int A0 = (h == 0) ? 0 : GL;
        localparam int NP = (h == 0) ? PL : PH;   // stored entries
        localparam int OFS = (h == 0) ? 0 : PL;
        for (genvar i = 0; i < NA; i++) begin : g_level
            localparam int N = (i == NA - 1) ? NP : R ** (i + 1);   // the last level: the stored entries
            localparam int STRIDE = R ** i;
            logic signed [TW-1:0] q;
            assign q = TW'($signed(a_data[(A0 + i)*AW +: AW]));
            for (genvar c = 0; c < N; c++) begin : g_entry
                localparam int D = c / STRIDE;      // value index of weight i
                localparam int C0 = c % STRIDE;     // pattern of weights 0..i-1
                logic signed [TW-1:0] term, e;
                if (BINARY != 0) begin : g_bin
                    assign term = (D == 1) ? q : '0;
                end else begin : g_ter
                    assign term = (D == 0) ? -q : ((D == 2) ? q : '0);
                end
                if (i == 0) begin : g_first
                    assign e = term;
                end else begin : g_next
                    assign e = g_level[i - 1].g_entry[C0].e + term;
                end
            end
        end
        for (genvar c = 0; c < NP; c++) begin : g_out
            assign tab[(OFS + c)*TW +: TW] = g_level[NA - 1].g_entry[c].e;
        end
    end

    assign a_ready = !t_valid || t_ready;

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            t_valid <= 1'b0;
        end else if (a_ready) begin
            t_valid <= a_valid;
        end
    end

    always_ff @(posedge clk) begin
        if (a_valid && a_ready) begin
            t_data <= tab;
            t_user <= a_user;
        end
    end
endmodule
