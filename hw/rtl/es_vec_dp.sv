// Element datapath of the vector unit (es_vec): one element per cycle, a fixed latency of L cycles,
// every stage advancing with `en` (one stall for the whole pipe, as in es_dequant). The operands of
// an element arrive together at stage 0: x, p (row buffer ports A and B), g, h (second buffer ports
// A and B), e (the read stream's element: float32, or an int8 in bits 7:0), and the per-instruction
// scalars beta (EMBED's row scale) and cmul (NORM_QUANT's 127/m). Operation order as in
// docs/numerics.md, one binary32 RNE rounding per operation (es_i2f, es_fmul):
//   M_EMBED  y = float32(e) * beta
//   M_RELU2  r = max(x, 0); y = (r * r) * e            (x: gate, e: up)
// `pad` forces the result to +0 (columns past the row's width); `lst` travels with the element.
// Stages: 2 (int8 -> float32 for EMBED, the rest delayed), 3 (first products), 3 (second product).
module es_vec_dp (
    input  logic        clk,
    input  logic        rst_n,
    input  logic        en,
    input  logic [2:0]  mode,
    input  logic        in_valid,
    input  logic [31:0] x,
    input  logic [31:0] p,
    input  logic [31:0] g,
    input  logic [31:0] h,
    input  logic [31:0] e,
    input  logic [31:0] beta,
    input  logic [31:0] cmul,
    input  logic        pad,
    input  logic        nsin,
    input  logic        lst,
    output logic        out_valid,
    output logic [31:0] y,
    output logic        out_lst
);
    localparam logic [2:0] M_EMBED = 3'd0;   // else M_RELU2 (es_vec's mode codes)
    localparam int L = 8;

    logic [L-1:0] v, pd, ls;
    always_ff @(posedge clk) begin
        if (!rst_n) v <= '0;
        else if (en) v <= {v[L-2:0], in_valid};
        if (en) begin
            pd <= {pd[L-2:0], pad};
            ls <= {ls[L-2:0], lst};
        end
    end
    assign out_valid = v[L-1];
    assign out_lst = ls[L-1];

    // ---- stage 1-2: int8 -> float32 (EMBED); the other operands wait beside it
    logic [31:0] f2, x1, x2, e1, e2;
    es_i2f u_i2f (.clk, .en, .x({{24{e[7]}}, e[7:0]}), .y(f2));
    always_ff @(posedge clk) begin
        if (en) begin
            x1 <= x;
            x2 <= x1;
            e1 <= e;
            e2 <= e1;
        end
    end

    // ---- stage 3-5: first product
    wire [31:0] r2 = x2[31] ? 32'd0 : x2;          // max(x, 0): -0 and negatives give +0
    wire [31:0] a1 = mode == M_EMBED ? f2 : r2;
    wire [31:0] b1 = mode == M_EMBED ? beta : r2;
    logic [31:0] m1, e3, e4, e5;
    es_fmul u_m1 (.clk, .en, .a(a1), .b(b1), .y(m1));
    always_ff @(posedge clk) begin
        if (en) begin
            e3 <= e2;
            e4 <= e3;
            e5 <= e4;
        end
    end

    // ---- stage 6-8: second product (ReLU^2 times up); EMBED's product waits beside it
    logic [31:0] m3, m1d6, m1d7, m1d8;
    es_fmul u_m3 (.clk, .en, .a(m1), .b(e5), .y(m3));
    always_ff @(posedge clk) begin
        if (en) begin
            m1d6 <= m1;
            m1d7 <= m1d6;
            m1d8 <= m1d7;
        end
    end

    assign y = pd[L-1] ? 32'd0 : mode == M_EMBED ? m1d8 : m3;

    wire unused = &{1'b0, p, g, h, cmul, nsin};
endmodule
