// Element datapath of the vector unit (es_vec): one element per cycle, a fixed latency of L cycles,
// every stage advancing with `en` (one stall for the whole pipe, as in es_dequant). The operands of
// an element arrive together at stage 0: x, p (row buffer ports A and B), g, h (second buffer ports
// A and B), e (the read stream's element: float32, or an int8 in bits 7:0), and the per-instruction
// scalar beta (EMBED's row scale). Operation order as in docs/numerics.md, one binary32 RNE rounding
// per operation (es_fmul, es_fadd; int8 -> float32 is exact):
//   M_EMBED  y = float32(e) * beta
//   M_RELU2  r = max(x, 0); y = (r * r) * e                 (x: gate, e: up)
//   M_ADD    y = x + e
//   M_ROPE   y = x * g + p * (nsin ? -h : h)                (x: the element, p: its rotate-half
//            partner, g/h: cos/sin; lo*cos - hi*sin = lo*cos + hi*(-sin) exactly, as negation is)
//   M_NQ     y = u = x * g (g = 1.0 without a gain: x * 1 = x exactly), q = clamp(rint(u * beta),
//            -128, 127) (beta = c = 127/m of the token), zz = z * z with z = rint(x * 2**kz)
//            (rms_factor's block fixed point, |z| <= 2**15, so zz < 2**31)
// `pad` forces every result to 0 (columns past the row's width, the i8 slots' padding bytes); `lst`
// travels with the element.
// Stages: 2 (int8 -> float32 for EMBED, the rest delayed), 3 (first products: ROPE's two), then from
// stage 5 the add (es_fadd) beside the second product (es_fmul, to stage 8: the multiplier that is
// ROPE's second in stages 3-5), NORM_QUANT's two es_f2i from stage 8 and z's square; every result
// waits for the last (L = 13 with es_fadd's 6 and es_f2i's 4), one latency for every mode.
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
    input  logic signed [9:0] kz,
    input  logic        pad,
    input  logic        nsin,
    input  logic        lst,
    output logic        out_valid,
    output logic [31:0] y,
    output logic [7:0]  q,
    output logic [31:0] zz,
    output logic        out_lst
);
    localparam logic [2:0] M_EMBED = 3'd0, M_RELU2 = 3'd1, M_ADD = 3'd2, M_NQ = 3'd4;   // else M_ROPE (es_vec's codes)
    // latencies of the shared primitives (their headers' LATENCY): the stages below are derived
    localparam int LADD = 6;                   // es_fadd
    localparam int LF2I = 4;                   // es_f2i
    localparam int L = 9 + LF2I > 5 + LADD ? 9 + LF2I : 5 + LADD;

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
    logic [31:0] xd [1:8];
    logic [31:0] ed [1:5];
    logic [31:0] pd2 [1:2];
    logic [31:0] gd1, hd1;
    logic        nd;
    always_ff @(posedge clk) begin
        if (en) begin
            xd[1] <= x;
            ed[1] <= e;
            for (int st = 2; st <= 5; st++) ed[st] <= ed[st - 1];
            for (int st = 2; st <= 8; st++) xd[st] <= xd[st - 1];
            pd2[1] <= p;
            pd2[2] <= pd2[1];
            gd1 <= g;
            hd1 <= h;
            nd <= nsin;
        end
    end

    // ---- stage 1-2: int8 -> float32 (EMBED, exact); the other operands wait beside it. Eight bits
    // need no rounding and an 8-bit leading-zero count: a few dozen LUTs against es_i2f's int32
    logic [7:0]  i8m;
    logic        i8s;
    always_ff @(posedge clk) begin
        if (en) begin
            i8s <= e[7];
            i8m <= e[7] ? 8'(-e[7:0]) : e[7:0];     // |-128| = 128 is 8'h80
        end
    end
    logic [2:0]  i8p;                                // position of the leading one
    always_comb begin
        i8p = '0;
        for (int bit8 = 0; bit8 < 8; bit8++) if (i8m[bit8]) i8p = 3'(bit8);
    end
    wire [6:0]  i8n = 7'(i8m << (3'd7 - i8p));       // below the leading one, left-aligned
    wire [31:0] f1c = i8m == 8'd0 ? 32'd0 : {i8s, 8'd127 + 8'(i8p), i8n[6:0], 16'd0};

    // ---- stage 3-5: first products. The second multiplier is ROPE's p * (+-h) from stage 2 (beside
    // m1, the sum's operands at stage 5) or, in the other modes, the product of m1 from stage 5 (m3 at
    // stage 8): no mode needs both, and a mode holds for a whole instruction (the pipe is empty between
    // two). The operands' mode selects sit before registers (a1, b1 at stage 2; b2 at stage 2 for ROPE,
    // at stage 5 otherwise: one register loaded from either), so es_fmul's first stage (leading-zero
    // count and shift) starts from flip-flops; beta is constant while elements are in the pipe.
    wire rope = !(mode == M_EMBED || mode == M_RELU2 || mode == M_ADD || mode == M_NQ);
    wire [31:0] r1 = xd[1][31] ? 32'd0 : xd[1];         // max(x, 0): -0 and negatives give +0
    logic [31:0] a1, b1, b2;
    always_ff @(posedge clk) begin
        if (en) begin
            a1 <= mode == M_EMBED ? f1c : mode == M_RELU2 ? r1 : xd[1];
            b1 <= mode == M_EMBED ? beta : mode == M_RELU2 ? r1 : gd1;
            b2 <= rope ? {hd1[31] ^ nd, hd1[30:0]} : mode == M_NQ ? beta : ed[4];
        end
    end
    logic [31:0] m1, m2, m3;
    es_fmul u_m1 (.clk, .en, .a(a1), .b(b1), .y(m1));
    es_fmul u_m2 (.clk, .en, .a(rope ? pd2[2] : m1), .b(b2), .y(m2));
    assign m3 = m2;

    // ---- from stage 5: the add (ADD, ROPE), the second product (ReLU^2, NORM_QUANT's u * c), then
    // NORM_QUANT's rint of u * c and of x * 2**kz, z * z; every result waits for stage L
    localparam int SS = 5 + LADD;              // stage of the sum
    localparam int SQ = 8 + LF2I;              // stage of q (from u * c at stage 8); z from x at stage 8
    logic [31:0] s_n;
    logic [7:0]  q_n;
    logic [16:0] z_n;
    es_fadd #(.W(32)) u_add (.clk, .en, .sub(1'b0), .a(mode == M_ADD ? xd[5] : m1), .b(mode == M_ADD ? ed[5] : m2),
                             .y(s_n));
    es_f2i #(.W(8), .LO(-128), .HI(127)) u_q (.clk, .en, .x(m3), .k(10'sd0), .y(q_n));
    es_f2i #(.W(17), .LO(-65536), .HI(65535)) u_z (.clk, .en, .x(xd[8]), .k(kz), .y(z_n));
    wire signed [33:0] zsq = $signed(z_n) * $signed(z_n);
    wire unused_zsq = &{1'b0, zsq[33:32]};

    // delay lines to stage L: element 0 is the result at its own stage
    logic [31:0] m1d [0:L-5];
    logic [31:0] m3d [0:L-8];
    logic [31:0] sd  [0:L-SS];
    logic [7:0]  qd  [0:L-SQ];
    logic [31:0] zd  [0:L-SQ-1];
    always_comb begin
        m1d[0] = m1;
        m3d[0] = m3;
        sd[0] = s_n;
        qd[0] = q_n;
    end
    always_ff @(posedge clk) begin
        if (en) begin
            for (int st = 1; st <= L - 5; st++) m1d[st] <= m1d[st - 1];
            for (int st = 1; st <= L - 8; st++) m3d[st] <= m3d[st - 1];
            for (int st = 1; st <= L - SS; st++) sd[st] <= sd[st - 1];
            for (int st = 1; st <= L - SQ; st++) qd[st] <= qd[st - 1];
            zd[0] <= zsq[31:0];
            for (int st = 1; st <= L - SQ - 1; st++) zd[st] <= zd[st - 1];
        end
    end

    wire zp = pd[L-1];
    assign y = zp ? 32'd0 : mode == M_EMBED || mode == M_NQ ? m1d[L-5] : mode == M_RELU2 ? m3d[L-8] : sd[L-SS];
    assign q = zp ? 8'd0 : qd[L-SQ];
    assign zz = zp ? 32'd0 : zd[L-SQ-1];
endmodule
