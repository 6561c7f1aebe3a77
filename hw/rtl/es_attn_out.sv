// Attention unit, outputs: o = float32(num) * f, one column per cycle, four columns packed per
// 16-byte beat (docs/numerics.md: num int64 -> binary32 with one RNE rounding, then one binary32
// multiply). float32(num) goes through binary64 (es_fcvt: int64 -> binary64 is exact for
// |num| < 2**53, then binary64 -> binary32 rounds once). The caller presents columns 0, 1, 2, 3 of
// each beat in turn (`col`); the beat leaves with its fourth column. Fixed latency, no stall.
module es_attn_out #(
    parameter int AW = 36
) (
    input  logic          clk,
    input  logic          rst_n,
    input  logic          in_valid,
    input  logic [1:0]    col,
    input  logic [AW-1:0] num,
    input  logic [31:0]   f,
    output logic          out_valid,
    output logic [127:0]  y
);
    localparam int LC = 5 + 5;                       // two es_fcvt (LATENCY 5)
    localparam int L = 1 + LC + 3;                   // input register, conversions, es_fmul
    logic [AW-1:0] num_r;
    logic [31:0] f_r, f_d, nf, p;
    logic [63:0] nd, nf64;
    logic [1:0] col_r, col_d;
    logic [L-1:0] v;
    wire en = in_valid || v != '0;     // advances while anything is in the pipe
    always_ff @(posedge clk) begin
        if (!rst_n) v <= '0;
        else if (en) v <= {v[L-2:0], in_valid};
        if (in_valid) begin
            num_r <= num;
            f_r <= f;
            col_r <= col;
        end
    end
    es_fcvt u_l2d (.clk, .en, .op(2'd2), .a(64'($signed(num_r))), .k(12'sd0), .y(nd));
    es_fcvt u_d2f (.clk, .en, .op(2'd1), .a(nd), .k(12'sd0), .y(nf64));
    assign nf = nf64[31:0];                          // binary32 results sit in the low half
    es_fmul u_m (.clk, .en, .a(nf), .b(f_d), .y(p));
    es_attn_dly #(.W(32), .N(LC)) u_fd (.clk, .d(f_r), .q(f_d));
    es_attn_dly #(.W(2), .N(L - 1)) u_cd (.clk, .d(col_r), .q(col_d));
    es_attn_pack #(.NQ(4), .W(32)) u_pk (
        .clk, .in_valid(v[L-1]), .in_lane(col_d), .in_last(col_d == 2'd3), .in_data(p), .out_valid, .out_data(y)
    );
    wire unused_hi = &{1'b0, nf64[63:32]};
endmodule
