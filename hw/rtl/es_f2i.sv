// IEEE binary32 -> signed integer: y = clamp(rint(x * 2**k), LO, HI), rint = round half to even
// (numpy's rint), clamp saturating, x * 2**k exact (no intermediate rounding). Uses: the INT8
// quantizer's clamp(rint(u * c), -128, 127) (k = 0), the attention weights E = rint(e * 2**15) in
// 0..32768 and A = rint(a * 32767 / max a) in 0..32767, and rms_factor's block fixed point
// z = rint(x * 2**(15 - e)) (the scaling 2**(15 - e) can be out of binary32's range, hence k;
// rint(ldexp(x, k)) equals rint(x * 2**k) because ldexp rounds only results below 2**-126, which
// rint takes to 0 either way). -0 and values that round to 0 give 0. Finite x only.
//
// Parameters: W output width (<= 32), LO <= HI within the signed range of W bits (a range such as
// 0..32768 needs W = 17, or W = 16 read as unsigned: y is the integer modulo 2**W).
// Ports (fixed): clk, en (every stage advances only when en = 1), x[31:0], k[9:0] (signed; tie to 0
// for a plain conversion), y[W-1:0]. Latency LATENCY = 4 en-cycles.
//
// Stages (one long path each):
//   1. exponent + k: the shift distance and direction; magnitudes >= 2**33 only flag saturation
//   2. one barrel shift: left for |x * 2**k| >= 1, right with guard and sticky bits otherwise (the
//      sticky bit from a mask of the shift distance, beside the shifter)
//   3. RNE increment and the conditional negation in one adder (-(m + i) = ~m + !i)
//   4. the two saturation compares and the final select
module es_f2i #(
    parameter int W = 32,
    parameter int LO = -2147483648,
    parameter int HI = 2147483647
) (
    input  logic              clk,
    input  logic              en,
    input  logic [31:0]       x,
    input  logic signed [9:0] k,
    output logic [W-1:0]      y
);
    /* verilator lint_off UNUSEDPARAM */
    localparam int LATENCY = 4;
    /* verilator lint_on UNUSEDPARAM */
    localparam int MAGW = 34;                   // |rint(x)| < 2**33 before saturation, + 1 for the carry

    // ---- stage 1: value = m * 2**t, t = e_eff + k - 150
    logic [23:0]        m;
    logic signed [11:0] t;
    always_comb begin
        m = {x[30:23] != 8'd0, x[22:0]};
        t = 12'((x[30:23] == 8'd0) ? 12'sd1 : $signed({4'd0, x[30:23]})) + 12'(k) - 12'sd150;
    end
    logic              sgn1, huge1, left1;
    logic [23:0]       m1;
    logic [3:0]        ls1;
    logic [4:0]        rs1;
    always_ff @(posedge clk) begin
        if (en) begin
            sgn1 <= x[31];
            m1 <= m;
            // left: m << t < 2**34 for t <= 10; beyond, any nonzero m saturates
            huge1 <= (t > 12'sd10) && (m != 24'd0);
            left1 <= t >= 12'sd0;
            ls1 <= t[3:0];
            // right: by -t; t <= -25 leaves m < 2**-1 entirely below the guard bit (shift 25)
            rs1 <= (t < -12'sd25) ? 5'd25 : 5'(-t);
        end
    end

    // ---- stage 2: shift
    logic [MAGW-1:0]   lsh;
    logic [48:0]       rsh;
    logic [23:0]       below;
    always_comb begin
        lsh = MAGW'(m1) << ls1;
        rsh = {m1, 25'd0} >> rs1;
        // sticky: the bits of m under the guard bit, m[rs - 2:0]
        below = (rs1 >= 5'd2) ? ~(24'hffffff << (rs1 - 5'd1)) : 24'd0;
    end
    logic              sgn2, huge2, g2, st2;
    logic [MAGW-1:0]   mag2;
    always_ff @(posedge clk) begin
        if (en) begin
            sgn2 <= sgn1;
            huge2 <= huge1;
            mag2 <= left1 ? lsh : MAGW'(rsh[48:25]);
            g2 <= !left1 && rsh[24];
            st2 <= !left1 && (m1 & below) != 24'd0;
        end
    end

    // ---- stage 3: round half to even, sign
    logic                   inc;
    logic signed [MAGW:0]   v3;
    always_comb inc = g2 && (mag2[0] || st2);
    logic                   sgn3, huge3;
    always_ff @(posedge clk) begin
        if (en) begin
            sgn3 <= sgn2;
            huge3 <= huge2;
            v3 <= sgn2 ? $signed({1'b1, ~mag2}) + $signed((MAGW+1)'({1'b0, !inc}))
                       : $signed({1'b0, mag2}) + $signed((MAGW+1)'({1'b0, inc}));
        end
    end

    // ---- stage 4: saturate
    localparam logic signed [MAGW:0] LOV = (MAGW+1)'(LO);
    localparam logic signed [MAGW:0] HIV = (MAGW+1)'(HI);
    always_ff @(posedge clk) begin
        if (en) begin
            if (huge3) y <= sgn3 ? W'(LOV) : W'(HIV);
            else if (v3 < LOV) y <= W'(LOV);
            else if (v3 > HIV) y <= W'(HIV);
            else y <= W'(v3);
        end
    end
    wire unused = &{1'b0, rsh[23:0]};           // below the guard bit: the sticky comes from `below`
endmodule
