// Attention unit: quant_heads of one head row (docs/numerics.md "Attention with an INT8 KV cache"):
//   m = max(max|x|, 1e-5);  c = float32(127 / m);  q = clamp(rint(x * c), -128, 127);  d = float32(m / 127)
// The row (D float32, `nbeats` = D/4 beats of the read stream) is loaded into XBUF while max|x| is
// tracked (for finite floats the magnitude order is the order of bits 30:0), then the two divisions
// run on es_fdiv, then 4 elements per cycle go through es_fmul and es_f2i (saturating to
// [-128, 127]) and leave as int8 beats of 16 (out_we, beat out_addr). `done` follows the last beat;
// `d` holds until the next start.
// OVL = 1: the second division (d, needed only at `done`) runs while the elements go through the
// multipliers (they need only c): ~30 cycles less per row; `done` waits for whichever ends last.
// OVL = 0 keeps the sequential order (the cycles the performance model of the KVP = 1 unit is fitted on).
module es_attn_quant #(
    parameter int DBMAX = 16,
    parameter bit OVL = 1'b0,
    parameter int LDB = $clog2(DBMAX)
) (
    input  logic           clk,
    input  logic           rst_n,
    input  logic           clear,     // abort: back to idle (the divider finishes on its own)
    input  logic           start,
    input  logic [6:0]     nbeats,
    input  logic           in_valid,
    output logic           in_ready,
    input  logic [127:0]   in_data,
    output logic           out_we,
    output logic [LDB-1:0] out_addr,
    output logic [127:0]   out_data,
    output logic           done,
    output logic [31:0]    d
);
    localparam logic [31:0] F127 = 32'h42FE_0000;
    localparam logic [31:0] EPS = 32'h3727_C5AC;     // float32(1e-5)
    localparam int LM = 3;                            // es_fmul
    localparam int LF = 4;                            // es_f2i LATENCY
    localparam int L = LM + LF;
    localparam int LX = $clog2(DBMAX * 4);

    typedef enum logic [2:0] { Q_IDLE, Q_LOAD, Q_DIV1, Q_DIV2, Q_RUN, Q_DRAIN, Q_WAITD } st_t;
    st_t st;
    logic [127:0] xbuf [DBMAX * 4];
    logic [6:0]   li, ri;
    logic [30:0]  m;
    logic [31:0]  c;
    logic         dv_start, dv_done, dv_wait, dv_busy;
    logic [31:0]  dv_a, dv_b;
    logic [63:0]  dv_y;
    logic [1:0]   d2;                                 // OVL: the d division 1 to start, 2 running, 3 done

    es_fdiv u_div (
        .clk, .rst_n, .start(dv_start), .dbl(1'b0), .a({32'd0, dv_a}), .b({32'd0, dv_b}), .busy(dv_busy), .done(dv_done), .y(dv_y)
    );

    assign in_ready = st == Q_LOAD;
    wire [30:0] mm = m > EPS[30:0] ? m : EPS[30:0];

    // ---- element pipeline: 4 lanes of fmul(x, c) then f2i
    wire         iss = st == Q_RUN && ri != nbeats;
    logic        en;
    wire [127:0] xw = xbuf[LX'(ri)];
    logic [127:0] pw;
    logic [4*8-1:0] qi;
    for (genvar i = 0; i < 4; i++) begin : g_lane
        es_fmul u_mul (.clk, .en, .a(xw[32*i +: 32]), .b(c), .y(pw[32*i +: 32]));
        es_f2i #(.W(8), .LO(-128), .HI(127)) u_f2i (.clk, .en, .x(pw[32*i +: 32]), .k(10'sd0), .y(qi[8*i +: 8]));
    end
    logic [L-1:0] v;
    logic [6:0]   oi;                                  // next result group of 4 elements
    // the pipe advances while anything is in it (and stands still, inputs unchanged, otherwise)
    assign en = iss || v != '0;
    always_ff @(posedge clk) begin
        if (!rst_n || clear) v <= '0;
        else if (en) v <= {v[L-2:0], iss};
    end

    always_ff @(posedge clk) begin
        done <= 1'b0;
        dv_start <= 1'b0;
        out_we <= 1'b0;
        if (!rst_n || clear) begin
            st <= Q_IDLE;
        end else begin
            case (st)
                Q_IDLE: if (start) begin
                    st <= Q_LOAD;
                    li <= '0;
                    m <= '0;
                    d2 <= '0;
                end
                Q_LOAD: if (in_valid) begin
                    logic [30:0] mx;
                    mx = m;
                    for (int i = 0; i < 4; i++) if (in_data[32*i +: 31] > mx) mx = in_data[32*i +: 31];
                    m <= mx;
                    xbuf[LX'(li)] <= in_data;
                    li <= li + 7'd1;
                    if (li + 7'd1 == nbeats) begin
                        st <= Q_DIV1;
                        dv_wait <= 1'b0;
                    end
                end
                Q_DIV1: begin
                    if (!dv_wait && !dv_busy && !dv_start) begin
                        dv_start <= 1'b1;
                        dv_a <= F127;
                        dv_b <= {1'b0, mm};
                        dv_wait <= 1'b1;
                    end else if (dv_done) begin
                        c <= dv_y[31:0];
                        dv_wait <= 1'b0;
                        if (OVL) begin
                            d2 <= 2'd1;
                            ri <= '0;
                            oi <= '0;
                            st <= Q_RUN;
                        end else st <= Q_DIV2;
                    end
                end
                Q_DIV2: begin
                    if (!dv_wait && !dv_busy && !dv_start) begin
                        dv_start <= 1'b1;
                        dv_a <= {1'b0, mm};
                        dv_b <= F127;
                        dv_wait <= 1'b1;
                    end else if (dv_done) begin
                        d <= dv_y[31:0];
                        ri <= '0;
                        oi <= '0;
                        st <= Q_RUN;
                    end
                end
                Q_RUN, Q_DRAIN: begin
                    if (iss) ri <= ri + 7'd1;
                    if (ri + 7'd1 == nbeats && iss) st <= Q_DRAIN;
                    if (v[L-1]) begin
                        for (int i = 0; i < 4; i++) out_data[32 * oi[1:0] + 8*i +: 8] <= qi[8*i +: 8];
                        oi <= oi + 7'd1;
                        if (oi[1:0] == 2'd3) begin
                            out_we <= 1'b1;
                            out_addr <= LDB'(oi >> 2);
                        end
                        if (oi + 7'd1 == nbeats) begin
                            if (OVL && d2 != 2'd3) st <= Q_WAITD;
                            else begin
                                st <= Q_IDLE;
                                done <= 1'b1;
                            end
                        end
                    end
                end
                Q_WAITD: if (d2 == 2'd3) begin
                    st <= Q_IDLE;
                    done <= 1'b1;
                end
                default: st <= Q_IDLE;
            endcase
            // OVL: the d division beside the element pipe
            if (OVL && d2 == 2'd1 && !dv_busy && !dv_start) begin
                dv_start <= 1'b1;
                dv_a <= {1'b0, mm};
                dv_b <= F127;
                d2 <= 2'd2;
            end else if (OVL && d2 == 2'd2 && dv_done) begin
                d <= dv_y[31:0];
                d2 <= 2'd3;
            end
        end
    end
    wire unused = &{1'b0, dv_y[63:32]};   // binary32 quotients sit in the low half
endmodule
