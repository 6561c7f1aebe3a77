// Element datapath of the vector unit (es_vec): one element per cycle, a fixed latency of L cycles,
// every stage advancing with `en` (one stall for the whole pipe, as in es_dequant). The operands of
// an element arrive together at stage 0: x, p (row buffer ports A and B), g, h (second buffer ports
// A and B), e (the read stream's element: float32, or an int8 in bits 7:0), and the per-instruction
// scalar beta (EMBED's row scale). Operation order as in docs/numerics.md, one binary32 RNE rounding
// per operation (es_i2f, es_fmul, es_fadd):
//   M_EMBED  y = float32(e) * beta
//   M_RELU2  r = max(x, 0); y = (r * r) * e                 (x: gate, e: up)
//   M_ADD    y = x + e
//   M_ROPE   y = x * g + p * (nsin ? -h : h)                (x: the element, p: its rotate-half
//            partner, g/h: cos/sin; lo*cos - hi*sin = lo*cos + hi*(-sin) exactly, as negation is)
// `pad` forces the result to +0 (columns past the row's width); `lst` travels with the element.
// Stages: 2 (int8 -> float32 for EMBED, the rest delayed), 3 (first products), 5 (the add, beside
// the second product and delays).
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
    input  logic        pad,
    input  logic        nsin,
    input  logic        lst,
    output logic        out_valid,
    output logic [31:0] y,
    output logic        out_lst
);
    localparam logic [2:0] M_EMBED = 3'd0, M_RELU2 = 3'd1, M_ADD = 3'd2;   // else M_ROPE (es_vec's codes)
    localparam int L = 10;

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

    // delay lines: dly(n) of a 32-bit operand
    logic [31:0] xd [1:5];
    logic [31:0] ed [1:5];
    logic [31:0] pd2 [1:2];
    logic [31:0] gd [1:2];
    logic [31:0] hd [1:2];
    logic [1:0]  nd;
    always_ff @(posedge clk) begin
        if (en) begin
            xd[1] <= x;
            ed[1] <= e;
            for (int i = 2; i <= 5; i++) begin
                xd[i] <= xd[i - 1];
                ed[i] <= ed[i - 1];
            end
            pd2[1] <= p;
            pd2[2] <= pd2[1];
            gd[1] <= g;
            gd[2] <= gd[1];
            hd[1] <= h;
            hd[2] <= hd[1];
            nd <= {nd[0], nsin};
        end
    end

    // ---- stage 1-2: int8 -> float32 (EMBED); the other operands wait beside it
    logic [31:0] f2;
    es_i2f u_i2f (.clk, .en, .x({{24{e[7]}}, e[7:0]}), .y(f2));

    // ---- stage 3-5: first products
    wire [31:0] r2 = xd[2][31] ? 32'd0 : xd[2];          // max(x, 0): -0 and negatives give +0
    wire [31:0] a1 = mode == M_EMBED ? f2 : mode == M_RELU2 ? r2 : xd[2];
    wire [31:0] b1 = mode == M_EMBED ? beta : mode == M_RELU2 ? r2 : gd[2];
    logic [31:0] m1, m2;
    es_fmul u_m1 (.clk, .en, .a(a1), .b(b1), .y(m1));
    es_fmul u_m2 (.clk, .en, .a(pd2[2]), .b({hd[2][31] ^ nd[1], hd[2][30:0]}), .y(m2));

    // ---- stage 6-10: the add (ADD, ROPE) beside the second product (ReLU^2) and delays
    logic [31:0] s10, m3, m3d [9:10];
    logic [31:0] m1d [6:10];
    es_fadd #(.W(32)) u_add (.clk, .en, .sub(1'b0), .a(mode == M_ADD ? xd[5] : m1), .b(mode == M_ADD ? ed[5] : m2),
                             .y(s10));
    es_fmul u_m3 (.clk, .en, .a(m1), .b(ed[5]), .y(m3));
    always_ff @(posedge clk) begin
        if (en) begin
            m3d[9] <= m3;
            m3d[10] <= m3d[9];
            m1d[6] <= m1;
            for (int i = 7; i <= 10; i++) m1d[i] <= m1d[i - 1];
        end
    end

    assign y = pd[L-1] ? 32'd0 : mode == M_EMBED ? m1d[10] : mode == M_RELU2 ? m3d[10] : s10;
endmodule
