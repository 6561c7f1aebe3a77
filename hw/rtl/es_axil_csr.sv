// AXI4-Lite control/status registers of the accelerator shell (map: edgestream/regmap.py, generated
// into es_regs_pkg; docs/registers.md). One write and one read at a time, OKAY responses; unmapped
// offsets read 0 and ignore writes. CTRL bits pulse for one cycle.
module es_axil_csr #(
    parameter logic [63:0] CONFIG_ID = es_regs_pkg::ES_CONFIG_ID
) (
    input  logic        clk,
    input  logic        rst_n,
    // AXI4-Lite slave
    input  logic [11:0] s_axil_awaddr,
    input  logic        s_axil_awvalid,
    output logic        s_axil_awready,
    input  logic [31:0] s_axil_wdata,
    input  logic [3:0]  s_axil_wstrb,
    input  logic        s_axil_wvalid,
    output logic        s_axil_wready,
    output logic [1:0]  s_axil_bresp,
    output logic        s_axil_bvalid,
    input  logic        s_axil_bready,
    input  logic [11:0] s_axil_araddr,
    input  logic        s_axil_arvalid,
    output logic        s_axil_arready,
    output logic [31:0] s_axil_rdata,
    output logic [1:0]  s_axil_rresp,
    output logic        s_axil_rvalid,
    input  logic        s_axil_rready,
    // control out
    output logic        start,
    output logic        soft_reset,
    output logic [39:0] prog_base,
    output logic [31:0] prog_size,
    output logic [31:0] pc,
    output logic [39:0] wgt_base,
    output logic [31:0] wgt_size,
    output logic [39:0] act_base,
    output logic [31:0] act_size,
    output logic [31:0] ntok,
    output logic [39:0] kv_base,
    output logic [31:0] kv_size,
    output logic [31:0] pos,
    output logic        irq_en,
    // what the build has (HW_UNITS, HW_VEC, HW_SMAX)
    input  logic [31:0] hw_units,
    input  logic [31:0] hw_vec,
    input  logic [31:0] hw_smax,
    // status in
    input  logic [4:0]  status,
    input  logic [31:0] err_code,
    input  logic [31:0] err_info,
    input  logic [63:0] cycles,
    input  logic [31:0] rd_beats,
    input  logic [31:0] wr_beats,
    input  logic [31:0] stall_wgt,
    input  logic [31:0] stall_act,
    input  logic [31:0] stall_res,
    input  logic [31:0] seq_cycles,
    input  logic [31:0] wgt_beats,
    input  logic [31:0] instr_count,
    input  logic [31:0] stop_pc,
    input  logic [31:0] argmax,
    input  logic [31:0] vec_cycles,
    input  logic [31:0] attn_cycles
);
    wire wr = s_axil_awvalid && s_axil_wvalid && !s_axil_bvalid;
    assign s_axil_awready = wr;
    assign s_axil_wready = wr;
    assign s_axil_bresp = 2'b00;
    assign s_axil_rresp = 2'b00;
    assign s_axil_arready = !s_axil_rvalid;

    wire [11:0] wa = {s_axil_awaddr[11:2], 2'b00};
    wire [31:0] wd = s_axil_wdata;

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            s_axil_bvalid <= 1'b0;
            start <= 1'b0;
            soft_reset <= 1'b0;
            prog_base <= '0;
            prog_size <= '0;
            pc <= '0;
            wgt_base <= '0;
            wgt_size <= '0;
            act_base <= '0;
            act_size <= '0;
            ntok <= '0;
            kv_base <= '0;
            kv_size <= '0;
            pos <= '0;
            irq_en <= 1'b0;
        end else begin
            start <= 1'b0;
            soft_reset <= 1'b0;
            if (s_axil_bvalid && s_axil_bready) s_axil_bvalid <= 1'b0;
            if (wr) begin
                s_axil_bvalid <= 1'b1;
                if (s_axil_wstrb == 4'hf) begin
                    case (wa)
                        es_regs_pkg::ES_REG_CTRL: begin
                            start <= wd[es_regs_pkg::ES_CTRL_START];
                            soft_reset <= wd[es_regs_pkg::ES_CTRL_SOFT_RESET];
                        end
                        es_regs_pkg::ES_REG_PROG_BASE_LO: prog_base[31:0] <= wd;
                        es_regs_pkg::ES_REG_PROG_BASE_HI: prog_base[39:32] <= wd[7:0];
                        es_regs_pkg::ES_REG_PROG_SIZE: prog_size <= wd;
                        es_regs_pkg::ES_REG_PC: pc <= wd;
                        es_regs_pkg::ES_REG_WGT_BASE_LO: wgt_base[31:0] <= wd;
                        es_regs_pkg::ES_REG_WGT_BASE_HI: wgt_base[39:32] <= wd[7:0];
                        es_regs_pkg::ES_REG_WGT_SIZE: wgt_size <= wd;
                        es_regs_pkg::ES_REG_ACT_BASE_LO: act_base[31:0] <= wd;
                        es_regs_pkg::ES_REG_ACT_BASE_HI: act_base[39:32] <= wd[7:0];
                        es_regs_pkg::ES_REG_ACT_SIZE: act_size <= wd;
                        es_regs_pkg::ES_REG_NTOK: ntok <= wd;
                        es_regs_pkg::ES_REG_KV_BASE_LO: kv_base[31:0] <= wd;
                        es_regs_pkg::ES_REG_KV_BASE_HI: kv_base[39:32] <= wd[7:0];
                        es_regs_pkg::ES_REG_KV_SIZE: kv_size <= wd;
                        es_regs_pkg::ES_REG_POS: pos <= wd;
                        es_regs_pkg::ES_REG_IRQ_EN: irq_en <= wd[0];
                        default: ;
                    endcase
                end
            end
        end
    end

    logic [31:0] rd;
    always_comb begin
        case ({s_axil_araddr[11:2], 2'b00})
            es_regs_pkg::ES_REG_MAGIC: rd = es_regs_pkg::ES_MAGIC;
            es_regs_pkg::ES_REG_VERSION: rd = es_regs_pkg::ES_VERSION;
            es_regs_pkg::ES_REG_CONFIG_ID_LO: rd = CONFIG_ID[31:0];
            es_regs_pkg::ES_REG_CONFIG_ID_HI: rd = CONFIG_ID[63:32];
            es_regs_pkg::ES_REG_HW_PARAMS: rd = {4'd0, 8'(es_regs_pkg::ES_MAXTOK), 8'(es_regs_pkg::ES_Q),
                                                 8'(es_regs_pkg::ES_T), 4'(es_regs_pkg::ES_G)};
            es_regs_pkg::ES_REG_HW_MAXK: rd = {16'(es_regs_pkg::ES_DATA_BYTES), 16'(es_regs_pkg::ES_MAXK)};
            es_regs_pkg::ES_REG_HW_UNITS: rd = hw_units;
            es_regs_pkg::ES_REG_HW_VEC: rd = hw_vec;
            es_regs_pkg::ES_REG_HW_SMAX: rd = hw_smax;
            es_regs_pkg::ES_REG_POS: rd = pos;
            es_regs_pkg::ES_REG_IRQ_EN: rd = {31'd0, irq_en};
            es_regs_pkg::ES_REG_ARGMAX: rd = argmax;
            es_regs_pkg::ES_REG_VEC_CYCLES: rd = vec_cycles;
            es_regs_pkg::ES_REG_ATTN_CYCLES: rd = attn_cycles;
            es_regs_pkg::ES_REG_STATUS: rd = {27'd0, status};
            es_regs_pkg::ES_REG_ERR_CODE: rd = err_code;
            es_regs_pkg::ES_REG_ERR_INFO: rd = err_info;
            es_regs_pkg::ES_REG_PROG_BASE_LO: rd = prog_base[31:0];
            es_regs_pkg::ES_REG_PROG_BASE_HI: rd = {24'd0, prog_base[39:32]};
            es_regs_pkg::ES_REG_PROG_SIZE: rd = prog_size;
            es_regs_pkg::ES_REG_PC: rd = pc;
            es_regs_pkg::ES_REG_WGT_BASE_LO: rd = wgt_base[31:0];
            es_regs_pkg::ES_REG_WGT_BASE_HI: rd = {24'd0, wgt_base[39:32]};
            es_regs_pkg::ES_REG_WGT_SIZE: rd = wgt_size;
            es_regs_pkg::ES_REG_ACT_BASE_LO: rd = act_base[31:0];
            es_regs_pkg::ES_REG_ACT_BASE_HI: rd = {24'd0, act_base[39:32]};
            es_regs_pkg::ES_REG_ACT_SIZE: rd = act_size;
            es_regs_pkg::ES_REG_NTOK: rd = ntok;
            es_regs_pkg::ES_REG_KV_BASE_LO: rd = kv_base[31:0];
            es_regs_pkg::ES_REG_KV_BASE_HI: rd = {24'd0, kv_base[39:32]};
            es_regs_pkg::ES_REG_KV_SIZE: rd = kv_size;
            es_regs_pkg::ES_REG_CYCLES_LO: rd = cycles[31:0];
            es_regs_pkg::ES_REG_CYCLES_HI: rd = cycles[63:32];
            es_regs_pkg::ES_REG_RD_BEATS: rd = rd_beats;
            es_regs_pkg::ES_REG_WR_BEATS: rd = wr_beats;
            es_regs_pkg::ES_REG_STALL_WGT: rd = stall_wgt;
            es_regs_pkg::ES_REG_STALL_ACT: rd = stall_act;
            es_regs_pkg::ES_REG_STALL_RES: rd = stall_res;
            es_regs_pkg::ES_REG_SEQ_CYCLES: rd = seq_cycles;
            es_regs_pkg::ES_REG_WGT_BEATS: rd = wgt_beats;
            es_regs_pkg::ES_REG_INSTR_COUNT: rd = instr_count;
            es_regs_pkg::ES_REG_STOP_PC: rd = stop_pc;
            default: rd = 32'd0;
        endcase
    end

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            s_axil_rvalid <= 1'b0;
        end else if (s_axil_arvalid && s_axil_arready) begin
            s_axil_rvalid <= 1'b1;
            s_axil_rdata <= rd;
        end else if (s_axil_rready) begin
            s_axil_rvalid <= 1'b0;
        end
    end

    wire unused = &{1'b0, s_axil_awaddr[1:0], s_axil_araddr[1:0]};
endmodule
