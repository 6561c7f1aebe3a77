// Synchronous FIFO with valid/ready on both sides (first-word fall-through).
module tlmm_fifo #(
    parameter int W = 8,
    parameter int DEPTH = 16,   // power of two
    parameter int AD = (DEPTH > 1) ? $clog2(DEPTH) : 1
) (
    input  logic         clk,
    input  logic         rst_n,
    input  logic         in_valid,
    output logic         in_ready,
    input  logic [W-1:0] in_data,
    output logic         out_valid,
    input  logic         out_ready,
    output logic [W-1:0] out_data,
    output logic [AD:0]  count
);
    logic [W-1:0] mem [DEPTH];
    logic [AD-1:0] wp, rp;

    wire push = in_valid && in_ready;
    wire pop = out_valid && out_ready;

    assign in_ready = count != (AD + 1)'(DEPTH);
    assign out_valid = count != '0;
    assign out_data = mem[rp];

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            wp <= '0;
            rp <= '0;
            count <= '0;
        end else begin
            if (push) wp <= wp + 1'b1;
            if (pop) rp <= rp + 1'b1;
            if (push && !pop) count <= count + 1'b1;
            else if (pop && !push) count <= count - 1'b1;
        end
    end

    always_ff @(posedge clk) begin
        if (push) mem[wp] <= in_data;
    end
endmodule
