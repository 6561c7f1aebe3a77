// Attention unit, pass 3 integer datapath: num[q][d] = sum_j A[q][j] * v[j][d] (docs/numerics.md
// "Attention"), NQ query lanes x 16 columns per value beat. A value row is DB beats (KVP > 1: words of
// KVP beats, the V slot padded to whole words; docs/units.md "KV cache in DDR"); every beat
// multiplies its 16 int8 values by the NQ weights of its key (A <= 32767, unsigned) and adds the
// products to accumulator word `v_addr` (one word = NQ lanes x 16 columns x KVP beats, AW bits each;
// exact: |num| <= 32767 * 128 * SMAX < 2**(AW-1)). v_first (the first key) overwrites instead of
// adding. A padding beat (past DB) adds into a word no output reads (its data is the zeros the unit
// wrote), so no mask is needed.
// Two register stages, no stall: products, then read-add-write of the word (the read is
// asynchronous, so back-to-back beats on one word, one word per row, see the previous sum).
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
    input  logic [KVP*128-1:0] v_data,
    input  logic [NQ*16-1:0]   a_w,
    input  logic [LDB-1:0]     o_addr,
    input  logic [LNQ-1:0]     o_lane,
    output logic [16*AW-1:0]   o_data
);
    localparam int LK = (KVP > 1) ? $clog2(KVP) : 0;
    localparam int VW = DBMAX / KVP;                   // words per lane and sub-beat
    localparam int LVW = (VW > 1) ? $clog2(VW) : 1;
    // ---- stage 1: products (16-bit unsigned weight x int8)
    logic           v1, f1;
    logic [LDB-1:0] a1;
    logic signed [23:0] p1 [NQ][KVP][16];
    always_ff @(posedge clk) begin
        v1 <= rst_n && v_valid;
        if (v_valid) begin
            f1 <= v_first;
            a1 <= v_addr;
            for (int n = 0; n < NQ; n++)
                for (int j = 0; j < KVP; j++)
                    for (int i = 0; i < 16; i++)
                        p1[n][j][i] <= $signed({1'b0, a_w[16*n +: 16]}) * $signed(v_data[128*j + 8*i +: 8]);
        end
    end

    // ---- stage 2: read, add, write. One memory per lane and sub-beat (one write port each: a single
    // array written by every lane in a loop is NQ write ports, which no RAM primitive has, so synthesis
    // built it from 37k flip-flops); VW words deep, it maps to distributed RAM (LUTRAM) with
    // asynchronous reads at a1 (the read-add-write) and the output port.
    wire [LDB-1:0] ow = o_addr >> LK;
    logic [16*AW-1:0] lane_o [NQ][KVP];
    for (genvar n = 0; n < NQ; n++) begin : g_lane
        for (genvar j = 0; j < KVP; j++) begin : g_sub
            (* ram_style = "distributed" *) logic [16*AW-1:0] acc [VW];
            always_ff @(posedge clk) begin
                if (v1) begin
                    logic [16*AW-1:0] w;
                    w = acc[a1[LVW-1:0]];
                    for (int i = 0; i < 16; i++)
                        w[AW*i +: AW] = (f1 ? AW'(0) : w[AW*i +: AW]) + AW'(p1[n][j][i]);
                    acc[a1[LVW-1:0]] <= w;
                end
            end
            assign lane_o[n][j] = acc[ow[LVW-1:0]];
        end
    end

    wire unused_a = &{1'b0, a1, ow};   // (the bits above a word index)
    if (KVP > 1) begin : g_osub
        assign o_data = lane_o[o_lane][o_addr[LK-1:0]];
    end else begin : g_o1
        assign o_data = lane_o[o_lane][0];
    end
endmodule
