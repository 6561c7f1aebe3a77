// Attention unit, outputs: o = float32(num) * f for 4 columns per cycle (docs/numerics.md:
// num int64 -> binary32 with one RNE rounding, then one binary32 multiply). float32(num) goes
// through binary64 (es_fcvt: int64 -> binary64 is exact for |num| < 2**53, then binary64 -> binary32
// rounds once). Fixed latency, no stall.
module es_attn_out #(
    parameter int AW = 36
) (
    input  logic          clk,
    input  logic          rst_n,
    input  logic          in_valid,
    input  logic [4*AW-1:0] num,
    input  logic [31:0]   f,
    output logic          out_valid,
    output logic [127:0]  y
);
    localparam int LC = 5 + 5;                       // two es_fcvt (LATENCY 5)
    localparam int L = LC + 3;
    logic [4*64-1:0] nd;
    logic [127:0] nf;
    logic [31:0] f_d;
    logic [L-1:0] v;
    wire en = in_valid || v != '0;     // advances while anything is in the pipe
    for (genvar i = 0; i < 4; i++) begin : g_col
        logic [63:0] nf64;
        es_fcvt u_l2d (.clk, .en, .op(2'd2), .a(64'($signed(num[AW*i +: AW]))), .k(12'sd0), .y(nd[64*i +: 64]));
        es_fcvt u_d2f (.clk, .en, .op(2'd1), .a(nd[64*i +: 64]), .k(12'sd0), .y(nf64));
        assign nf[32*i +: 32] = nf64[31:0];
        wire unused_hi = &{1'b0, nf64[63:32]};   // binary32 results sit in the low half
        es_fmul u_m (.clk, .en, .a(nf[32*i +: 32]), .b(f_d), .y(y[32*i +: 32]));
    end
    es_attn_dly #(.W(32), .N(LC)) u_fd (.clk, .d(f), .q(f_d));
    always_ff @(posedge clk) begin
        if (!rst_n) v <= '0;
        else if (en) v <= {v[L-2:0], in_valid};
    end
    assign out_valid = v[L-1];
endmodule
