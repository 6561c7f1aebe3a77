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
    localparam int LC = es_fcvt_pkg::LAT_I2D + es_fcvt_pkg::LAT_D2F;
    localparam int L = LC + 3;
    logic [4*64-1:0] nd;
    logic [127:0] nf;
    logic [31:0] f_d;
    for (genvar i = 0; i < 4; i++) begin : g_col
        es_fcvt_i2d u_i2d (.clk, .en(1'b1), .x(64'($signed(num[AW*i +: AW]))), .y(nd[64*i +: 64]));
        es_fcvt_d2f u_d2f (.clk, .en(1'b1), .x(nd[64*i +: 64]), .y(nf[32*i +: 32]));
        es_fmul u_m (.clk, .en(1'b1), .a(nf[32*i +: 32]), .b(f_d), .y(y[32*i +: 32]));
    end
    es_attn_dly #(.W(32), .N(LC)) u_fd (.clk, .d(f), .q(f_d));
    logic [L-1:0] v;
    always_ff @(posedge clk) v <= {v[L-2:0], rst_n && in_valid};
    assign out_valid = v[L-1];
endmodule
