// Attention unit, pass 3 integer datapath: num[q][d] = sum_j A[q][j] * v[j][d] (docs/numerics.md
// "Attention"), NQ query lanes x 16 columns per value beat. A value row is DB beats; every beat
// multiplies its 16 int8 values by the NQ weights of its key (A <= 32767, unsigned) and adds the
// products to accumulator word `v_addr` (one word = NQ lanes x 16 columns, AW bits each; exact:
// |num| <= 32767 * 128 * SMAX < 2**(AW-1)). v_first (the first key) overwrites instead of adding.
// Two register stages, no stall: products, then read-add-write of the word (the read is
// asynchronous, so back-to-back beats on one word, DB = 1, see the previous sum).
// Read port: word o_addr, lane o_lane, 16 columns of AW bits (asynchronous).
module es_attn_vacc #(
    parameter int NQ = 4,
    parameter int DBMAX = 16,
    parameter int AW = 40,
    parameter int LDB = $clog2(DBMAX),
    parameter int LNQ = (NQ > 1) ? $clog2(NQ) : 1
) (
    input  logic               clk,
    input  logic               rst_n,
    input  logic               v_valid,
    input  logic               v_first,
    input  logic [LDB-1:0]     v_addr,
    input  logic [127:0]       v_data,
    input  logic [NQ*16-1:0]   a_w,
    input  logic [LDB-1:0]     o_addr,
    input  logic [LNQ-1:0]     o_lane,
    output logic [16*AW-1:0]   o_data
);
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
endmodule
