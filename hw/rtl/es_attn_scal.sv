// Attention unit, per-query scalars (docs/numerics.md), on the sequential units, one at a time:
//   fop = 0: mult = float32(32767 / max a)                        (binary32 division; max a = 0 reads as 1)
//   fop = 1: f    = float32(float64(max a) / 32767 / float64(den)) (binary64 divisions, one final rounding)
// Two operations because pass 3 needs only mult: the caller takes the set's mults, starts pass 3 and
// computes the f's (two binary64 divisions each, ~130 cycles) while the value stream runs.
// es_fdiv (binary32 / binary64, correctly rounded) and es_fcvt (binary32 <-> binary64, int -> binary64:
// exact here) give the same bits as numpy whatever their algorithm. One es_fcvt does the three
// conversions (its op travels with the operand): float64(max a) and float64(den) on the first two
// cycles, float32 of the quotient at the end.
module es_attn_scal (
    input  logic        clk,
    input  logic        rst_n,
    input  logic        clear,        // abort: back to idle (the divider finishes on its own)
    input  logic        start,
    input  logic        fop,          // 0: mult, 1: f
    input  logic [31:0] amax,
    input  logic [47:0] den,
    output logic        done,
    output logic [31:0] mult,
    output logic [31:0] f
);
    localparam logic [31:0] F32767 = 32'h46FF_FE00;
    localparam logic [63:0] D32767 = 64'h40DF_FFC0_0000_0000;
    localparam logic [31:0] ONE = 32'h3F80_0000;
    localparam int LC = 5;                           // es_fcvt LATENCY

    typedef enum logic [2:0] { S_IDLE, S_M, S_D1, S_CVT, S_D2, S_D3, S_RND } st_t;
    st_t st;
    logic        dv_start, dv_done, dv_dbl, dv_busy;
    logic [63:0] dv_a, dv_b, dv_y;
    logic [63:0] a64, den64, q1, y64;
    logic [31:0] yf;
    logic [3:0]  w;
    logic        dn;                             // den64 latched
    es_fdiv u_div (.clk, .rst_n, .start(dv_start), .dbl(dv_dbl), .a(dv_a), .b(dv_b), .busy(dv_busy), .done(dv_done), .y(dv_y));
    logic [63:0] yf64, cv_a;
    logic [1:0]  cv_op;
    always_comb begin
        // S_CVT's first cycle (w = LC + 1) F2D max a, its second L2D den; else D2F of the quotient
        cv_op = 2'd1;
        cv_a = y64;
        if (st == S_CVT && w == 4'(LC + 1)) begin
            cv_op = 2'd0;
            cv_a = {32'd0, amax};
        end else if (st == S_CVT && w == 4'(LC)) begin
            cv_op = 2'd2;
            cv_a = 64'(den);
        end
    end
    // (a wire: Icarus 11 evaluates `st != S_IDLE` in the port connection to x)
    logic cv_en;
    assign cv_en = st != S_IDLE;
    es_fcvt u_cvt (.clk, .en(cv_en), .op(cv_op), .a(cv_a), .k(12'sd0), .y(yf64));
    assign yf = yf64[31:0];

    always_ff @(posedge clk) begin
        done <= 1'b0;
        dv_start <= 1'b0;
        if (!rst_n || clear) begin
            st <= S_IDLE;
        end else begin
            case (st)
                S_IDLE: if (start) begin
                    st <= fop ? S_CVT : S_M;
                    dn <= 1'b0;
                    w <= 4'(LC + 1);
                end
                S_M: if (!dv_busy) begin   // (the divider may still be busy after an abort)
                    dv_start <= 1'b1;
                    dv_dbl <= 1'b0;
                    dv_a <= {32'd0, F32767};
                    dv_b <= {32'd0, amax[30:0] == 31'd0 ? ONE : amax};
                    st <= S_D1;
                end
                S_D1: if (dv_done) begin
                    mult <= dv_y[31:0];
                    done <= 1'b1;
                    st <= S_IDLE;
                end
                S_CVT: begin
                    // amax and den are held by the caller: wait for the conversions (F2D leaves
                    // LC cycles after it went in, at w = 1, L2D one cycle later)
                    if (w == 4'd1) a64 <= yf64;
                    if (w == 4'd0 && !dn) begin   // (the divider may still be busy: latch once)
                        den64 <= yf64;
                        dn <= 1'b1;
                    end
                    if (w != 4'd0) w <= w - 4'd1;
                    else if (!dv_busy) begin
                        dv_start <= 1'b1;
                        dv_dbl <= 1'b1;
                        dv_a <= a64;
                        dv_b <= D32767;
                        st <= S_D2;
                    end
                end
                S_D2: if (dv_done) begin
                    q1 <= dv_y;
                    dv_start <= 1'b1;
                    dv_dbl <= 1'b1;
                    dv_a <= dv_y;
                    dv_b <= den64;
                    st <= S_D3;
                end
                S_D3: if (dv_done) begin
                    y64 <= dv_y;
                    w <= 4'(LC + 1);
                    st <= S_RND;
                end
                S_RND: begin
                    if (w != 4'd0) w <= w - 4'd1;
                    else begin
                        f <= yf;
                        done <= 1'b1;
                        st <= S_IDLE;
                    end
                end
                default: st <= S_IDLE;
            endcase
        end
    end
    wire unused = &{1'b0, q1, yf64[63:32]};
endmodule
