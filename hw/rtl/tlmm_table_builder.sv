// Online TLMM table builder.
//
// From one group of G signed activations (one stream beat) it computes every weight-pattern sum
//   ternary (BINARY = 0): T[c] = sum_i (digit3_i(c) - 1) * a_i,  c in [0, 3**G)
//   binary  (BINARY = 1): B[c] = sum_i  bit_i(c)          * a_i,  c in [0, 2**G)
// exactly as edgestream.tlmm.build_ternary_tables / build_binary_tables (entry c at bits
// [c*TW +: TW] of t_data). The sums are formed level by level (level i extends every pattern of
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
    parameter int P = R ** G,
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
    // All levels flattened: level i holds R**(i+1) entries starting at entry base(i); entry c of
    // level i extends pattern c % R**i of level i-1 by value c / R**i of weight i.
    function automatic int base(input int i);
        int b, p;
        b = 0;
        p = R;
        for (int j = 0; j < i; j++) begin
            b = b + p;
            p = p * R;
        end
        base = b;
    endfunction

    localparam int TOTAL = base(G);
    localparam int LAST = base(G - 1);

    // Each level only reads the level below it; split_var lets Verilator see that (the one
    // flattened vector is otherwise reported as a false combinational loop, UNOPTFLAT).
    logic [TOTAL*TW-1:0] lv /* verilator split_var */;

    for (genvar i = 0; i < G; i++) begin : g_level
        localparam int N = R ** (i + 1);
        localparam int STRIDE = R ** i;
        localparam int BI = base(i);
        localparam int BP = (i == 0) ? 0 : base(i - 1);
        logic signed [TW-1:0] q;
        assign q = TW'($signed(a_data[i*AW +: AW]));
        for (genvar c = 0; c < N; c++) begin : g_entry
            localparam int D = c / STRIDE;      // value index of weight i
            localparam int C0 = c % STRIDE;     // pattern of weights 0..i-1
            logic signed [TW-1:0] term;
            if (BINARY != 0) begin : g_bin
                assign term = (D == 1) ? q : '0;
            end else begin : g_ter
                assign term = (D == 0) ? -q : ((D == 2) ? q : '0);
            end
            if (i == 0) begin : g_first
                assign lv[c*TW +: TW] = term;
            end else begin : g_next
                assign lv[(BI + c)*TW +: TW] = lv[(BP + C0)*TW +: TW] + term;
            end
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
            t_data <= lv[LAST*TW +: P*TW];
            t_user <= a_user;
        end
    end
endmodule
