// Attention unit, pass 1 integer datapath: NQ int8 query rows held on chip, one key row streamed past
// them as 16-byte beats (16 int8 per beat, DB beats per row); per key, one exact dot product per
// query lane (|dot| <= DMAX * 128 * 128 < 2**23: int32 is exact; docs/numerics.md "Attention").
// Four register stages, no stall: the caller only sends a beat when it can take the dot four cycles
// later (the score chain behind it never stalls either).
//   0. query word of beat `k_addr` and the key beat registered
//   1. 16 signed 8x8 products per lane
//   2. their sum (adder tree)
//   3. accumulate over the row's beats; on the last beat the dot leaves (dot_valid)
module es_attn_dot #(
    parameter int NQ = 4,
    parameter int DBMAX = 16,
    parameter int LDB = $clog2(DBMAX),
    parameter int LNQ = (NQ > 1) ? $clog2(NQ) : 1
) (
    input  logic               clk,
    input  logic               rst_n,
    // query rows: beat q_addr of lane q_lane
    input  logic               q_we,
    input  logic [LNQ-1:0]     q_lane,
    input  logic [LDB-1:0]     q_addr,
    input  logic [127:0]       q_data,
    // key beats, in order: k_addr 0 .. DB-1, k_last on DB-1
    input  logic               k_valid,
    input  logic [LDB-1:0]     k_addr,
    input  logic               k_last,
    input  logic [127:0]       k_data,
    output logic               dot_valid,
    output logic [NQ*32-1:0]   dot
);
    logic [127:0] qmem [NQ][DBMAX];

    always_ff @(posedge clk) begin
        if (q_we) qmem[q_lane][q_addr] <= q_data;
    end

    // ---- stage 0
    logic         v0, l0, f0;
    logic [127:0] qw0 [NQ];
    logic [127:0] kw0;
    always_ff @(posedge clk) begin
        v0 <= rst_n && k_valid;
        if (k_valid) begin
            l0 <= k_last;
            f0 <= k_addr == '0;
            kw0 <= k_data;
            for (int n = 0; n < NQ; n++) qw0[n] <= qmem[n][k_addr];
        end
    end

    // ---- stage 1: products
    logic        v1, l1, f1;
    logic signed [15:0] p1 [NQ][16];
    always_ff @(posedge clk) begin
        v1 <= rst_n && v0;
        if (v0) begin
            l1 <= l0;
            f1 <= f0;
            for (int n = 0; n < NQ; n++)
                for (int i = 0; i < 16; i++)
                    p1[n][i] <= $signed(qw0[n][8*i +: 8]) * $signed(kw0[8*i +: 8]);
        end
    end

    // ---- stage 2: sum of the beat
    logic        v2, l2, f2;
    logic signed [19:0] s2 [NQ];
    always_ff @(posedge clk) begin
        v2 <= rst_n && v1;
        if (v1) begin
            l2 <= l1;
            f2 <= f1;
            for (int n = 0; n < NQ; n++) begin
                logic signed [19:0] acc;
                acc = '0;
                for (int i = 0; i < 16; i++) acc = acc + 20'(p1[n][i]);
                s2[n] <= acc;
            end
        end
    end

    // ---- stage 3: accumulate over the row
    logic signed [31:0] acc3 [NQ];
    always_ff @(posedge clk) begin
        dot_valid <= rst_n && v2 && l2;
        for (int n = 0; n < NQ; n++) begin
            if (v2) begin
                acc3[n] <= (f2 ? 32'sd0 : acc3[n]) + 32'(s2[n]);
                if (l2) dot[32*n +: 32] <= (f2 ? 32'sd0 : acc3[n]) + 32'(s2[n]);
            end
        end
    end
endmodule
