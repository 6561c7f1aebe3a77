// Attention unit, pass 1 integer datapath: NQ int8 query rows held on chip, one key row streamed past
// them (16 int8 per 16-byte beat, DB beats per row); per key, one exact dot product per query lane
// (|dot| <= DMAX * 128 * 128 < 2**23: int32 is exact; docs/numerics.md "Attention").
// KVP = 1: one beat of the row per cycle, k_addr its beat index 0 .. DB-1 (the caller keeps the scale
// beat out). KVP > 1: one word of KVP beats of the padded K slot per cycle (docs/units.md "KV cache
// in DDR", slot beat b = KVP*k_addr + j in beat j of the word, b = 0 the scale beat, b > DB padding).
// The query rows are stored at their slot-beat positions, and the query word of a beat that is not a
// key beat is forced to zero in the stage-0 register (a synchronous reset of those flip-flops, no
// LUTs), so the scale beat and the padding add nothing: no mux on the key data.
// No stall: the caller only sends a beat when it can take the dot four (KVP > 1: five) cycles later
// (the score chain behind it never stalls either).
//   0. query word(s) of `k_addr` and the key beat(s) registered
//   1. 16 (x KVP) signed 8x8 products per lane
//   2. their sum per beat (adder tree); KVP > 1: 2b. the sum of the word's beats (its own stage: a
//      64-term tree in one stage would be twice the logic depth)
//   3. accumulate over the row; on the last beat (word) the dot leaves (dot_valid)
module es_attn_dot #(
    parameter int NQ = 4,
    parameter int DBMAX = 16,
    parameter int KVP = 1,
    parameter int LDB = $clog2(DBMAX),
    parameter int LNQ = (NQ > 1) ? $clog2(NQ) : 1
) (
    input  logic               clk,
    input  logic               rst_n,
    input  logic [4:0]         db,          // beats per row (KVP > 1: which slot beats are key beats)
    // query rows: beat q_addr of lane q_lane
    input  logic               q_we,
    input  logic [LNQ-1:0]     q_lane,
    input  logic [LDB-1:0]     q_addr,
    input  logic [127:0]       q_data,
    // key beats (words), in order: k_addr 0 .. last, k_last on the last
    input  logic               k_valid,
    input  logic [LDB:0]       k_addr,
    input  logic               k_last,
    input  logic [KVP*128-1:0] k_data,
    output logic               dot_valid,
    output logic [NQ*32-1:0]   dot
);
    localparam int OFF = (KVP > 1) ? 1 : 0;           // slot beat of the row's beat 0
    localparam int LK = (KVP > 1) ? $clog2(KVP) : 0;
    localparam int QW = (DBMAX + OFF + KVP - 1) / KVP; // query words per lane and sub-beat
    localparam int SW = 20 + LK;                       // bits of a word's sum
    localparam int LQW = (QW > 1) ? $clog2(QW) : 1;
    localparam int LKS = (KVP > 1) ? LK : 1;

    wire [LDB:0] qpos = (LDB + 1)'(q_addr) + (LDB + 1)'(OFF);
    wire [LDB:0] qwd = qpos >> LK;
    wire [LKS-1:0] qsub = (KVP > 1) ? LKS'(qpos) : '0;
    // the query word of each lane and beat at k_addr (asynchronous reads of small memories, into the
    // stage-0 register)
    logic [127:0] qrd [NQ][KVP];
    if (KVP == 1) begin : g_q1
        logic [127:0] qmem [NQ][QW];
        always_ff @(posedge clk) begin
            if (q_we) qmem[q_lane][qwd[LQW-1:0]] <= q_data;
        end
        always_comb for (int n = 0; n < NQ; n++) qrd[n][0] = qmem[n][k_addr[LQW-1:0]];
        wire unused_q = &{1'b0, qsub};
    end else begin : g_qn
        // one memory per lane and beat (one write and one read port each: as one array of NQ x KVP
        // read ports Yosys 0.70's memory_libmap fails)
        for (genvar n = 0; n < NQ; n++) begin : g_n
            for (genvar j = 0; j < KVP; j++) begin : g_j
                logic [127:0] qm [QW];
                always_ff @(posedge clk) begin
                    if (q_we && q_lane == LNQ'(n) && qsub == LKS'(j)) qm[qwd[LQW-1:0]] <= q_data;
                end
                assign qrd[n][j] = qm[k_addr[LQW-1:0]];
            end
        end
    end
    wire unused_q = &{1'b0, qwd};

    // which beats of the word are key beats
    logic [KVP-1:0] kv_in;
    always_comb begin
        for (int j = 0; j < KVP; j++) begin
            if (KVP == 1) kv_in[j] = 1'b1;
            else kv_in[j] = 32'(k_addr) * KVP + j != 0 && 32'(k_addr) * KVP + j <= 32'(db);   // (OFF = 1)
        end
    end

    // ---- stage 0
    logic         v0, l0, f0;
    logic [127:0] qw0 [NQ][KVP];
    logic [KVP*128-1:0] kw0;
    always_ff @(posedge clk) begin
        v0 <= rst_n && k_valid;
        if (k_valid) begin
            l0 <= k_last;
            f0 <= k_addr == '0;
            kw0 <= k_data;
            for (int n = 0; n < NQ; n++)
                for (int j = 0; j < KVP; j++)
                    qw0[n][j] <= kv_in[j] ? qrd[n][j] : 128'd0;
        end
    end

    // ---- stage 1: products
    logic        v1, l1, f1;
    logic signed [15:0] p1 [NQ][KVP][16];
    always_ff @(posedge clk) begin
        v1 <= rst_n && v0;
        if (v0) begin
            l1 <= l0;
            f1 <= f0;
            for (int n = 0; n < NQ; n++)
                for (int j = 0; j < KVP; j++)
                    for (int i = 0; i < 16; i++)
                        p1[n][j][i] <= $signed(qw0[n][j][8*i +: 8]) * $signed(kw0[128*j + 8*i +: 8]);
        end
    end

    // ---- stage 2: sum of each beat
    logic        v2, l2, f2;
    logic signed [19:0] s2 [NQ][KVP];
    always_ff @(posedge clk) begin
        v2 <= rst_n && v1;
        if (v1) begin
            l2 <= l1;
            f2 <= f1;
            for (int n = 0; n < NQ; n++)
                for (int j = 0; j < KVP; j++) begin
                    logic signed [19:0] acc;
                    acc = '0;
                    for (int i = 0; i < 16; i++) acc = acc + 20'(p1[n][j][i]);
                    s2[n][j] <= acc;
                end
        end
    end

    // ---- stage 2b (KVP > 1): sum of the word
    logic        v3, l3, f3;
    logic signed [SW-1:0] s3 [NQ];
    if (KVP > 1) begin : g_word
        always_ff @(posedge clk) begin
            v3 <= rst_n && v2;
            if (v2) begin
                l3 <= l2;
                f3 <= f2;
                for (int n = 0; n < NQ; n++) begin
                    logic signed [SW-1:0] acc;
                    acc = '0;
                    for (int j = 0; j < KVP; j++) acc = acc + SW'(s2[n][j]);
                    s3[n] <= acc;
                end
            end
        end
    end else begin : g_beat
        always_comb begin
            v3 = v2;
            l3 = l2;
            f3 = f2;
            for (int n = 0; n < NQ; n++) s3[n] = s2[n][0];
        end
    end

    // ---- stage 3: accumulate over the row
    logic signed [31:0] acc3 [NQ];
    always_ff @(posedge clk) begin
        dot_valid <= rst_n && v3 && l3;
        for (int n = 0; n < NQ; n++) begin
            if (v3) begin
                acc3[n] <= (f3 ? 32'sd0 : acc3[n]) + 32'(s3[n]);
                if (l3) dot[32*n +: 32] <= (f3 ? 32'sd0 : acc3[n]) + 32'(s3[n]);
            end
        end
    end
endmodule
