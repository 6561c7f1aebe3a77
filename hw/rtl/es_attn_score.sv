// Attention unit, pass 1 floating point: per key j and query lane n (docs/numerics.md)
//   c = (dq[n] * dk[j]) * scale;   s = float32(dot[n][j]) * c          (binary32, RNE, in that order)
// c is computed when the key's scale beat arrives (two es_fmul), float32(dot) when its dot product
// leaves es_attn_dot (es_i2f: |dot| < 2**23, exact); the two meet in small FIFOs (either may come
// first) and the product leaves in key order. No stall: a key takes at least two beats, the FIFOs
// never hold more than a few keys.
module es_attn_score #(
    parameter int NQ = 4
) (
    input  logic            clk,
    input  logic            rst_n,
    input  logic [31:0]     scale,
    input  logic [NQ*32-1:0] dq,
    input  logic            k_valid,
    input  logic [31:0]     dk,
    input  logic            dot_valid,
    input  logic [NQ*32-1:0] dot,
    output logic            s_valid,
    output logic [NQ*32-1:0] s
);
    logic [NQ*32-1:0] p1, c, df;
    logic [5:0] cv;
    logic [1:0] dvv;
    logic [2:0] sv;
    logic join_;
    // each pipe advances while anything is in it
    wire en_c = k_valid || cv != '0;
    wire en_d = dot_valid || dvv != '0;
    wire en_s = join_ || sv != '0;
    for (genvar n = 0; n < NQ; n++) begin : g_lane
        es_fmul u_m1 (.clk, .en(en_c), .a(dq[32*n +: 32]), .b(dk), .y(p1[32*n +: 32]));
        es_fmul u_m2 (.clk, .en(en_c), .a(p1[32*n +: 32]), .b(scale), .y(c[32*n +: 32]));
        es_i2f u_cv (.clk, .en(en_d), .x(dot[32*n +: 32]), .y(df[32*n +: 32]));
    end
    always_ff @(posedge clk) begin
        if (!rst_n) begin
            cv <= '0;
            dvv <= '0;
        end else begin
            if (en_c) cv <= {cv[4:0], k_valid};
            if (en_d) dvv <= {dvv[0], dot_valid};
        end
    end

    logic c_ok, d_ok, c_room, d_room;
    logic [3:0] c_n, d_n;
    logic [NQ*32-1:0] c_q, d_q;
    assign join_ = c_ok && d_ok;
    tlmm_fifo #(.W(NQ * 32), .DEPTH(8)) u_cf (
        .clk, .rst_n, .in_valid(cv[5]), .in_ready(c_room), .in_data(c), .out_valid(c_ok), .out_ready(join_),
        .out_data(c_q), .count(c_n)
    );
    tlmm_fifo #(.W(NQ * 32), .DEPTH(8)) u_df (
        .clk, .rst_n, .in_valid(dvv[1]), .in_ready(d_room), .in_data(df), .out_valid(d_ok), .out_ready(join_),
        .out_data(d_q), .count(d_n)
    );
    for (genvar n = 0; n < NQ; n++) begin : g_s
        es_fmul u_m3 (.clk, .en(en_s), .a(d_q[32*n +: 32]), .b(c_q[32*n +: 32]), .y(s[32*n +: 32]));
    end
    always_ff @(posedge clk) begin
        if (!rst_n) sv <= '0;
        else if (en_s) sv <= {sv[1:0], join_};
    end
    assign s_valid = sv[2];
    wire unused = &{1'b0, c_room, d_room, c_n, d_n};
endmodule
