// Attention unit, pass 2 (on chip): per key j and query lane n (docs/numerics.md)
//   e = exp_neg(s - max s) = exp2_neg((s - max s) * float32(log2 e));   E = rint(e * 2**15)
//   a = float32(E) * dv[j]
// One chain (es_fadd subtract, es_fmul, es_exp2neg, es_f2i: rint(e * 2**k) with k = 15, exact
// scaling, 0..32768; es_i2f, exact; es_fmul; II = 1) serves one (key, lane) per cycle: the caller
// presents the lanes of a key on consecutive cycles (`in_last` on its last lane). A key past the
// lane's position (vis = 0) gives E = 0 and a = +0. Every result leaves on the item port (for the
// per-lane sums and maxima); the key's word of a leaves with its last lane (es_attn_pack). Fixed
// latency, no stall.
module es_attn_soft #(
    parameter int NQ = 4,
    parameter int LNQ = (NQ > 1) ? $clog2(NQ) : 1
) (
    input  logic             clk,
    input  logic             rst_n,
    input  logic             in_valid,
    input  logic [LNQ-1:0]   in_lane,
    input  logic             in_last,
    input  logic             vis,
    input  logic [31:0]      s,
    input  logic [31:0]      dv,
    input  logic [31:0]      smax,
    output logic             item_valid,
    output logic [LNQ-1:0]   item_lane,
    output logic [31:0]      item_a,
    output logic [16:0]      item_e,
    output logic             out_valid,
    output logic [NQ*32-1:0] a
);
    localparam logic [31:0] LOG2E = 32'h3FB8_AA3B;   // float32(log2(e)), numerics.LOG2E
    localparam int LA = 6, LM = 3, LE = 14, LF = 4, LI = 2;   // latencies: es_fadd, es_fmul, es_exp2neg, es_f2i, es_i2f
    localparam int L0 = LA + LM + LE + LF + LI;   // a's second operand dv is needed here
    localparam int L = 1 + L0 + LM;               // input register, then the chain

    // input register (the caller's lane select of the SBUF word is in front of it)
    logic [31:0] s_r, smax_r, dv_r;
    logic        vis_r, last_r;
    logic [LNQ-1:0] ln_r;
    logic [L-1:0] v;
    wire en = in_valid || v != '0;     // advances while anything is in the pipe
    always_ff @(posedge clk) begin
        if (!rst_n) v <= '0;
        else if (en) v <= {v[L-2:0], in_valid};
        if (in_valid) begin
            s_r <= s;
            smax_r <= smax;
            dv_r <= dv;
            vis_r <= vis;
            last_r <= in_last;
            ln_r <= in_lane;
        end
    end
    logic [31:0] t, z, ex, af, y, dv_d;
    logic [16:0] ei, ei_d;
    es_fadd #(.W(32)) u_sub (.clk, .en, .sub(1'b1), .a(s_r), .b(smax_r), .y(t));
    es_fmul u_l2 (.clk, .en, .a(t), .b(LOG2E), .y(z));
    es_exp2neg u_ex (.clk, .en, .z(z), .y(ex));
    es_f2i #(.W(17), .LO(0), .HI(32768)) u_r (.clk, .en, .x(ex), .k(10'sd15), .y(ei));
    es_i2f u_cv (.clk, .en, .x(32'(ei)), .y(af));
    es_fmul u_mv (.clk, .en, .a(af), .b(dv_d), .y(y));
    es_attn_dly #(.W(32), .N(L0)) u_dv (.clk, .d(dv_r), .q(dv_d));
    es_attn_dly #(.W(17), .N(LI + LM)) u_ed (.clk, .d(ei), .q(ei_d));
    logic vis_d, last_d;
    logic [LNQ-1:0] ln_d;
    es_attn_dly #(.W(LNQ + 2), .N(L - 1)) u_tag (.clk, .d({vis_r, last_r, ln_r}), .q({vis_d, last_d, ln_d}));
    assign item_valid = v[L-1];
    assign item_lane = ln_d;
    assign item_a = vis_d ? y : 32'd0;
    assign item_e = vis_d ? ei_d : 17'd0;
    es_attn_pack #(.NQ(NQ), .W(32)) u_pk (
        .clk, .in_valid(item_valid), .in_lane(ln_d), .in_last(last_d), .in_data(item_a), .out_valid, .out_data(a)
    );
endmodule
