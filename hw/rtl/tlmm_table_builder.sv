// Online TLMM table builder.
//
// From one group of G signed activations (one stream beat) it computes every weight-pattern sum
//   ternary (BINARY = 0): T[c] = sum_i (digit3_i(c) - 1) * a_i,  c in [0, (3**G + 1)/2)
//   binary  (BINARY = 1): B[c] = sum_i  bit_i(c)          * a_i,  c in [0, 2**G)
// exactly as edgestream.tlmm.build_ternary_tables / build_binary_tables (entry c at bits
// [c*TW +: TW] of t_data). A ternary table is sign-symmetric, T[3**G - 1 - c] = -T[c] (every trit
// negated), so only its lower half up to the all-zero pattern c = (3**G - 1)/2 is built and stored:
// tlmm_wdecode folds the upper codes onto it with a sign, tlmm_lanes negates. That halves the table
// word, the table memory and every lane's mux. The sums are formed level by level (level i extends every pattern of
// weights 0..i-1 by the R possible values of weight i), so a whole table costs about R**G adders
// and one whole group table leaves per cycle (II = 1). One register stage; a_user rides along
// unchanged (the engine puts the table-memory write address there).
module tlmm_table_builder #(
    parameter int G = 5,        // group size (1..6)
    parameter int AW = 8,       // activation width (signed)
    parameter int BINARY = 0,   // 0: 3**G ternary entries, 1: 2**G binary entries (bit-serial)
    parameter int UW = 1,       // sideband width
    // derived: do not override
    parameter int R = (BINARY != 0) ? 2 : 3,
    parameter int P = (BINARY != 0) ? R ** G : (R ** G + 1) / 2,   // entries built and stored
    parameter int TW = AW + $clog2(G)
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
    // Level i holds R**(i+1) entries; entry c of level i extends pattern c % R**i of level i-1 by
    // value c / R**i of weight i. Every entry is its own signal (g_level[i].g_entry[c].e): a plain
    // feed-forward chain for every simulator (one wide vector per level makes Verilator see a false
    // loop and makes Icarus re-evaluate every part-select on each change).
    for (genvar i = 0; i < G; i++) begin : g_level
        localparam int N = (i == G - 1) ? P : R ** (i + 1);   // the last level: the stored entries
        localparam int STRIDE = R ** i;
        logic signed [TW-1:0] q;
        assign q = TW'($signed(a_data[i*AW +: AW]));
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

    logic [P*TW-1:0] tab;
    for (genvar c = 0; c < P; c++) begin : g_out
        assign tab[c*TW +: TW] = g_level[G - 1].g_entry[c].e;
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
