// Attention unit, pass 3 integer datapath: num[q][d] = sum_j A[q][j] * v[j][d] (docs/numerics.md
// "Attention"), exact: |num| <= 32767 * 128 * SMAX < 2**(AW-1). v_first (the first key) overwrites
// instead of adding.
// KVP = 1: a value row is DB beats; every beat multiplies its 16 int8 values by the NQ weights of its
// key (A <= 32767, unsigned) and adds the NQ x 16 products to accumulator word `v_addr` (one word =
// NQ lanes x 16 columns, AW bits each).
// KVP > 1: a value row is VW words of KVP beats (the V slot padded to whole words; docs/units.md "KV
// cache in DDR"), and a word is taken once per query lane, `v_lane` on consecutive cycles (the caller
// holds the word for the set's lanes): KVP x 16 products of one lane's weight per cycle into word
// (v_lane, v_addr). The adders and the accumulator memory stay those of KVP = 1 (64 column sums a
// cycle): four lanes of four beats would be 4x the adders and the LUTRAM (Yosys: 25.5k LUT against
// 6.1k), and the weight chain gives one (key, lane) a cycle anyway. A padding beat (past DB) adds into
// columns no output reads (its data is the zeros the unit wrote), so no mask is needed.
// Two register stages, no stall: products, then read-add-write of the word (the read is
// asynchronous, so back-to-back beats on one word see the previous sum).
// Read port: beat o_addr, lane o_lane, 16 columns of AW bits (asynchronous).
module es_attn_vacc #(
    parameter int NQ = 4,
    parameter int DBMAX = 16,
    parameter int AW = 40,
    parameter int KVP = 1,
    parameter int LDB = $clog2(DBMAX),
    parameter int LNQ = (NQ > 1) ? $clog2(NQ) : 1
) (
    input  logic               clk,
    input  logic               rst_n,
    input  logic               v_valid,
    input  logic               v_first,
    input  logic [LDB-1:0]     v_addr,
    input  logic [LNQ-1:0]     v_lane,      // KVP > 1: the lane of this cycle (KVP = 1: every lane)
    input  logic [KVP*128-1:0] v_data,
    input  logic [NQ*16-1:0]   a_w,
    input  logic [LDB-1:0]     o_addr,
    input  logic [LNQ-1:0]     o_lane,
    output logic [16*AW-1:0]   o_data
);
    if (KVP == 1) begin : g_lanes
        // ---- stage 1: products (16-bit unsigned weight x int8)
        logic           v1, f1;
        logic [LDB-1:0] a1;
        logic signed [23:0] p1 [NQ][16];
        always_ff @(posedge clk) begin
            v1 <= rst_n && v_valid;
            if (v_valid) begin
                f1 <= v_first;
                a1 <= v_addr;
                for (int n = 0; n < NQ; n++)
                    for (int i = 0; i < 16; i++)
                        p1[n][i] <= $signed({1'b0, a_w[16*n +: 16]}) * $signed(v_data[8*i +: 8]);
            end
        end

        // ---- stage 2: read, add, write. One memory per lane (one write port each: a single array
        // written by every lane in a loop is NQ write ports, which no RAM primitive has, so synthesis
        // built it from 37k flip-flops); DBMAX words deep, it maps to distributed RAM (LUTRAM) with
        // asynchronous reads at a1 (the read-add-write) and o_addr (the output port).
        logic [16*AW-1:0] lane_o [NQ];
        for (genvar n = 0; n < NQ; n++) begin : g_lane
            (* ram_style = "distributed" *) logic [16*AW-1:0] acc [DBMAX];
            always_ff @(posedge clk) begin
                if (v1) begin
                    logic [16*AW-1:0] w;
                    w = acc[a1];
                    for (int i = 0; i < 16; i++)
                        w[AW*i +: AW] = (f1 ? AW'(0) : w[AW*i +: AW]) + AW'(p1[n][i]);
                    acc[a1] <= w;
                end
            end
            assign lane_o[n] = acc[o_addr];
        end
        assign o_data = lane_o[o_lane];
        wire unused_l = &{1'b0, v_lane};
    end else begin : g_words
        localparam int LK = $clog2(KVP);
        localparam int VW = DBMAX / KVP;               // words per lane
        localparam int LVW = (VW > 1) ? $clog2(VW) : 1;
        localparam int WB = KVP * 16 * AW;             // bits of a word's sums
        // ---- stage 1: products of the lane's weight
        logic           v1, f1;
        logic [LVW-1:0] a1;
        logic [LNQ-1:0] n1;
        logic signed [23:0] p1 [KVP*16];
        wire  [15:0]    aw = a_w[16*v_lane +: 16];
        always_ff @(posedge clk) begin
            v1 <= rst_n && v_valid;
            if (v_valid) begin
                f1 <= v_first;
                a1 <= v_addr[LVW-1:0];
                n1 <= v_lane;
                for (int i = 0; i < KVP * 16; i++)
                    p1[i] <= $signed({1'b0, aw}) * $signed(v_data[8*i +: 8]);
            end
        end
        // ---- stage 2: read, add, write of word (lane, word): one memory (one write port), NQ*VW
        // words deep, LUTRAM with asynchronous reads (the read-add-write and the output port)
        (* ram_style = "distributed" *) logic [WB-1:0] acc [NQ * VW];
        wire [LNQ+LVW-1:0] wa = {n1, a1};
        always_ff @(posedge clk) begin
            if (v1) begin
                logic [WB-1:0] w;
                w = acc[wa];
                for (int i = 0; i < KVP * 16; i++)
                    w[AW*i +: AW] = (f1 ? AW'(0) : w[AW*i +: AW]) + AW'(p1[i]);
                acc[wa] <= w;
            end
        end
        wire [LDB-1:0] ow = o_addr >> LK;
        wire [WB-1:0]  orow = acc[{o_lane, ow[LVW-1:0]}];
        assign o_data = orow[16*AW*o_addr[LK-1:0] +: 16*AW];
        wire unused_a = &{1'b0, v_addr, ow};   // (the bits above a word index)
    end
endmodule
