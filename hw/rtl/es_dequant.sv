// Dequantize stage of the result path (the DEQUANTs after each TLMM, docs/registers.md): per result
// unit (row batch rb, token t) of Q INT32 accumulators it writes Q float32
//   y[q] = float32(acc[q]) * float32(beta[rb*Q + q] * s[t])      (binary32 RNE, docs/numerics.md)
// s[t] arrive first (load/ld_idx: one 4-float beat each), beta as one unit of Q floats per row batch
// (b_*: popped with the row batch's last token). DL lanes (DL divides Q): a unit goes through them as
// NS = Q/DL sub-beats, lanes j*DL..j*DL+DL-1 in sub-beat j (the lowest first), each on its own output
// beat of DL floats; the accumulator and beta units are held by their senders (valid/ready) until the
// last sub-beat takes them, so the stage stores nothing but its pipeline. DL = Q: one beat per unit.
// Six register stages: es_i2f (2, then one delay) beside es_fmul beta*s (3), then es_fmul of the two
// (3), so no cycle holds more than one long path (leading-zero shift, 24x24 product, or round) at
// 250 MHz. One valid bit per stage and one stall for all of them; a full pipeline takes a sub-beat per
// cycle. With en = 0 the accumulators pass through (as the same NS sub-beats).
module es_dequant #(
    parameter int Q = 4,
    parameter int DL = Q,
    parameter int MAXTOK = 8,
    parameter int TIW = (MAXTOK > 1) ? $clog2(MAXTOK) : 1
) (
    input  logic             clk,
    input  logic             rst_n,
    input  logic             en,
    input  logic [7:0]       ntok,
    input  logic             ld_valid,
    input  logic [1:0]       ld_idx,
    input  logic [127:0]     ld_data,
    input  logic             in_valid,
    output logic             in_ready,
    input  logic [Q*32-1:0]  in_data,
    input  logic [TIW-1:0]   in_tok,
    input  logic             b_valid,
    output logic             b_ready,
    input  logic [Q*32-1:0]  b_data,
    output logic             out_valid,
    input  logic             out_ready,
    output logic [DL*32-1:0] out_data
);
    localparam int L = 6;  // i2f (2) + one delay || beta*s (3), then the product (3)
    localparam int NS = Q / DL;

    logic [31:0]      s_reg [4 * ((MAXTOK + 3) / 4)];
    logic [L-1:0]     v;
    logic [DL*32-1:0] a2, a3, f3, y6, acc_j, beta_j;
    logic [31:0]      s_t;
    logic             last;  // the current sub-beat is the unit's last

    // one stall for the whole pipeline: every stage advances when the last one can move
    wire adv = !v[L-1] || out_ready;
    wire take = en && in_valid && b_valid && adv;

    if (NS == 1) begin : g_whole
        assign last = 1'b1;
        assign acc_j = in_data;
        assign beta_j = b_data;
    end else begin : g_sub
        localparam int SW = $clog2(NS);
        logic [SW-1:0] j;
        wire step = en ? take : (in_valid && out_ready);
        assign last = j == SW'(NS - 1);
        assign acc_j = in_data[32'(j) * DL * 32 +: DL * 32];
        assign beta_j = b_data[32'(j) * DL * 32 +: DL * 32];
        always_ff @(posedge clk) begin
            if (!rst_n) j <= '0;
            else if (step) j <= last ? '0 : j + 1'b1;
        end
    end

    assign s_t = s_reg[in_tok];
    for (genvar q = 0; q < DL; q++) begin : g_lane
        es_i2f u_i2f (.clk, .en(adv), .x(acc_j[q*32 +: 32]), .y(a2[q*32 +: 32]));
        es_fmul u_f (.clk, .en(adv), .a(beta_j[q*32 +: 32]), .b(s_t), .y(f3[q*32 +: 32]));
        es_fmul u_y (.clk, .en(adv), .a(a3[q*32 +: 32]), .b(f3[q*32 +: 32]), .y(y6[q*32 +: 32]));
    end

    assign in_ready = (en ? (b_valid && adv) : out_ready) && last;
    assign b_ready = take && last && 32'(in_tok) + 32'd1 == 32'(ntok);
    assign out_valid = en ? v[L-1] : in_valid;
    assign out_data = en ? y6 : acc_j;

    always_ff @(posedge clk) begin
        if (ld_valid) begin
            for (int i = 0; i < 4; i++) s_reg[4 * 32'(ld_idx) + i] <= ld_data[i*32 +: 32];
        end
        if (!rst_n) v <= '0;
        else if (adv) v <= {v[L-2:0], take};
        if (adv) a3 <= a2;  // i2f is one stage shorter than beta * s
    end
endmodule
