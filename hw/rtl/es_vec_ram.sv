// Row buffer of the vector unit: N float32 elements in VL banks (element i in bank i mod VL, word
// i / VL), so VL consecutive elements from any start index are one word of each bank, read or
// written in one cycle. Port A reads or writes (lane mask `wm`: a row's last group), port B reads;
// lane k of a port is element idx + k. Each bank has one read/write port and one read port, both
// reads registered and advancing with `en` (the pipeline's stall), so Yosys maps it to true
// dual-port block RAM (RAMB36E2: 1024 x 32 per block); the lane rotation after the banks uses the
// start index registered with the read. A write and an A read never share a cycle in es_vec (a
// buffer is filled, then read). Unaligned starts are what the i8 slot layout (groups of G elements
// at 8-byte slots), RoPE's rotate-half partner at D/2 off VL and table rows at any offset need.
module es_vec_ram #(
    parameter int VL = 1,              // 1, 2, 4 or 8
    parameter int N = 8192,            // elements, a multiple of VL
    parameter int AW = $clog2(N)
) (
    input  logic             clk,
    input  logic             en,
    input  logic             we,
    input  logic [VL-1:0]    wm,
    input  logic [AW-1:0]    a_idx,
    input  logic [32*VL-1:0] a_wdata,
    output logic [32*VL-1:0] a_rdata,
    input  logic [AW-1:0]    b_idx,
    output logic [32*VL-1:0] b_rdata
);
    localparam int LB = VL > 1 ? $clog2(VL) : 1;
    localparam int BA = VL > 1 ? AW - LB : AW;     // address bits of a bank
    logic [31:0] ra [VL];
    logic [31:0] rb [VL];
    for (genvar r = 0; r < VL; r++) begin : g_bank
        // the lane whose element this bank holds: k = (r - idx) mod VL, element idx + k, word (idx + k) / VL
        logic [LB-1:0] ka;
        logic [BA-1:0] wa, wb;
        if (VL == 1) begin : g_one
            assign ka = 1'b0;
            assign wa = a_idx;
            assign wb = b_idx;
        end else begin : g_many
            // (ka, kb wrap mod VL: LB bits before the add)
            logic [LB-1:0] kb;
            assign ka = LB'(r) - a_idx[LB-1:0];
            assign kb = LB'(r) - b_idx[LB-1:0];
            wire [AW-1:0] ea = a_idx + AW'(ka);
            wire [AW-1:0] eb = b_idx + AW'(kb);
            assign wa = ea[AW-1:LB];
            assign wb = eb[AW-1:LB];
            wire unused_lo = &{1'b0, ea[LB-1:0], eb[LB-1:0]};
        end
        logic [31:0] mem [N / VL];
        // the bank's registered reads in registers of its own: written as ra[r] in the write's block,
        // Icarus 11 left port A's read X (the shell's VL = 1 decoder on Icarus); same netlist in Yosys
        logic [31:0] qa, qb;
        always_ff @(posedge clk) begin
            if (we && wm[ka]) mem[wa] <= a_wdata[32 * ka +: 32];
            else if (en) qa <= mem[wa];
        end
        always_ff @(posedge clk) begin
            if (en) qb <= mem[wb];
        end
        assign ra[r] = qa;
        assign rb[r] = qb;
    end
    if (VL == 1) begin : g_out1
        assign a_rdata = ra[0];
        assign b_rdata = rb[0];
    end else begin : g_rot
        logic [LB-1:0] sa, sb;
        always_ff @(posedge clk) begin
            if (en) begin
                sa <= a_idx[LB-1:0];
                sb <= b_idx[LB-1:0];
            end
        end
        always_comb begin
            for (int k = 0; k < VL; k++) begin
                a_rdata[32 * k +: 32] = ra[LB'(sa + LB'(k))];
                b_rdata[32 * k +: 32] = rb[LB'(sb + LB'(k))];
            end
        end
    end
endmodule
