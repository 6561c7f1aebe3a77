// Dequantize stage of the result path (MATMUL descriptor flag DEQUANT, docs/registers.md): per result
// beat (row batch rb, token t) of Q INT32 accumulators it writes Q float32
//   y[q] = float32(acc[q]) * float32(beta[rb*Q + q] * s[t])      (binary32 RNE, docs/numerics.md)
// s[t] arrive first (load/ld_idx: one 4-float beat each), beta as one beat of Q floats per row batch
// (b_*: popped with the row batch's last token). Two register stages (i2f and beta*s, then the
// product); every boundary is valid/ready. With en = 0 the accumulators pass through unchanged.
module es_dequant #(
    parameter int Q = 4,
    parameter int MAXTOK = 8,
    parameter int TIW = (MAXTOK > 1) ? $clog2(MAXTOK) : 1
) (
    input  logic            clk,
    input  logic            rst_n,
    input  logic            en,
    input  logic [7:0]      ntok,
    input  logic            ld_valid,
    input  logic [1:0]      ld_idx,
    input  logic [127:0]    ld_data,
    input  logic            in_valid,
    output logic            in_ready,
    input  logic [Q*32-1:0] in_data,
    input  logic [TIW-1:0]  in_tok,
    input  logic            b_valid,
    output logic            b_ready,
    input  logic [Q*32-1:0] b_data,
    output logic            out_valid,
    input  logic            out_ready,
    output logic [Q*32-1:0] out_data
);
    logic [31:0] s_reg [4 * ((MAXTOK + 3) / 4)];
    logic            v1, v2;
    logic [Q*32-1:0] a1, f1, y2, a0, f0, y1;
    logic [31:0]     s_t;

    assign s_t = s_reg[in_tok];
    for (genvar q = 0; q < Q; q++) begin : g_lane
        es_i2f u_i2f (.x(in_data[q*32 +: 32]), .y(a0[q*32 +: 32]));
        es_fmul u_f (.a(b_data[q*32 +: 32]), .b(s_t), .y(f0[q*32 +: 32]));
        es_fmul u_y (.a(a1[q*32 +: 32]), .b(f1[q*32 +: 32]), .y(y1[q*32 +: 32]));
    end

    wire adv2 = !v2 || out_ready;
    wire adv1 = !v1 || adv2;
    wire take = en && in_valid && b_valid && adv1;
    assign in_ready = en ? (b_valid && adv1) : out_ready;
    assign b_ready = take && 32'(in_tok) + 32'd1 == 32'(ntok);
    assign out_valid = en ? v2 : in_valid;
    assign out_data = en ? y2 : in_data;

    always_ff @(posedge clk) begin
        if (ld_valid) begin
            for (int i = 0; i < 4; i++) s_reg[4 * 32'(ld_idx) + i] <= ld_data[i*32 +: 32];
        end
        if (!rst_n) begin
            v1 <= 1'b0;
            v2 <= 1'b0;
        end else begin
            if (adv1) v1 <= take;
            if (adv2) v2 <= v1;
        end
        if (take) begin
            a1 <= a0;
            f1 <= f0;
        end
        if (adv2 && v1) y2 <= y1;
    end
endmodule
