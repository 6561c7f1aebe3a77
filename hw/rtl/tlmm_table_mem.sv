// Simple dual-port table memory (one write port, one registered read port), the shape that maps
// onto UltraScale+ BRAM/URAM (or LUTRAM when shallow). One word is a whole group table.
module tlmm_table_mem #(
    parameter int W = 8,
    parameter int DEPTH = 16,
    parameter int AD = (DEPTH > 1) ? $clog2(DEPTH) : 1
) (
    input  logic          clk,
    input  logic          wr_en,
    input  logic [AD-1:0] wr_addr,
    input  logic [W-1:0]  wr_data,
    input  logic          rd_en,
    input  logic [AD-1:0] rd_addr,
    output logic [W-1:0]  rd_data
);
    logic [W-1:0] mem [DEPTH];

    always_ff @(posedge clk) begin
        if (wr_en) begin
            mem[wr_addr] <= wr_data;
        end
    end

    always_ff @(posedge clk) begin
        if (rd_en) begin
            rd_data <= mem[rd_addr];
        end
    end
endmodule
