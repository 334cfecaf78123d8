//! The entry-point symbols Volatility 3 reads through a type
//! (`object_from_symbol`), with the C type each has in the kernel: BTF
//! describes no global variable (only per-CPU ones), so this table is what
//! gives `init_task` its `struct task_struct`.
//!
//! Each entry lists candidate types, first match wins, resolved against the
//! capture's own BTF: a kernel that renamed a type (`tk_core` became a
//! `struct tk_data` in 6.14; before, an anonymous struct found by its
//! members, as trailofbits/mquire does) gets the type its version has.
//! Kept against volatility3's Linux plugins (v2.11 to 2.28: `pslist`,
//! `lsmod`, `sockstat`, `bash`, `capabilities`, `check_idt`, `kmsg`,
//! `tty_check`, `keyboard_notifiers`, `ebpf`, `iomem`, `mountinfo`, ...) and
//! the 32 symbols of the btf2json evaluation (blog.eb9f.de, 2024-11-10,
//! appendix A).

/// How many elements an array symbol has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// A fixed count (`IDT_ENTRIES`).
    Fixed(u64),
    /// As many as fit before the next symbol (`MAX_NUMNODES` and the like
    /// are configuration-dependent).
    FromGap,
}

/// A C type to look up in the capture's BTF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spec {
    /// `struct NAME`.
    Struct(&'static str),
    /// A base type by its ISF name.
    Base(&'static str),
    /// A typedef by name, resolved to what it names.
    Typedef(&'static str),
    /// A pointer to a type.
    Ptr(&'static Spec),
    /// An array of a type.
    Array(Count, &'static Spec),
    /// An anonymous struct with exactly these members (in order).
    Shape(&'static [&'static str]),
}

/// Architectures with different entry points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// x86_64.
    X86_64,
    /// aarch64.
    Aarch64,
}

/// One entry point.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// The kallsyms name.
    pub symbol: &'static str,
    /// Only on this architecture.
    pub arch: Option<Arch>,
    /// Candidate types, first match wins.
    pub types: &'static [Spec],
}

const fn e(symbol: &'static str, types: &'static [Spec]) -> Entry {
    Entry {
        symbol,
        arch: None,
        types,
    }
}

const fn x86(symbol: &'static str, types: &'static [Spec]) -> Entry {
    Entry {
        symbol,
        arch: Some(Arch::X86_64),
        types,
    }
}

use Spec::{Array, Base, Ptr, Shape, Struct, Typedef};

const LIST_HEAD: &[Spec] = &[Struct("list_head")];
const SCHED_CLASS: &[Spec] = &[Struct("sched_class")];
const SEQ_OPS: &[Spec] = &[Struct("seq_operations")];
const ULONG: &[Spec] = &[Base("long unsigned int")];
const VOID: &[Spec] = &[Base("void")];
const SYSCALLS: &[Spec] = &[Array(Count::FromGap, &Typedef("sys_call_ptr_t"))];

/// The table.
pub const ENTRIES: &[Entry] = &[
    // Stacking and the process list.
    e("init_task", &[Struct("task_struct")]),
    e("init_files", &[Struct("files_struct")]),
    e("init_mm", &[Struct("mm_struct")]),
    e("init_fs", &[Struct("fs_struct")]),
    e("init_pid_ns", &[Struct("pid_namespace")]),
    e("init_uts_ns", &[Struct("uts_namespace")]),
    e("init_net", &[Struct("net")]),
    e(
        "tk_core",
        &[Struct("tk_data"), Shape(&["seq", "timekeeper"])],
    ),
    // Modules.
    e("modules", LIST_HEAD),
    e("module_kset", &[Ptr(&Struct("kset"))]),
    e("mod_tree", &[Struct("mod_tree_root")]),
    // Networking.
    e("net_namespace_list", LIST_HEAD),
    e("socket_file_ops", &[Struct("file_operations")]),
    e("sockfs_dentry_operations", &[Struct("dentry_operations")]),
    e("tcp4_seq_afinfo", &[Struct("tcp_seq_afinfo")]),
    e("tcp6_seq_afinfo", &[Struct("tcp_seq_afinfo")]),
    e("udp4_seq_afinfo", &[Struct("udp_seq_afinfo")]),
    e("udp6_seq_afinfo", &[Struct("udp_seq_afinfo")]),
    e("udplite4_seq_afinfo", &[Struct("udp_seq_afinfo")]),
    e("udplite6_seq_afinfo", &[Struct("udp_seq_afinfo")]),
    // check_afinfo (2.2x, kernels >= 4.18) reads each protocol's /proc
    // seq_operations through its symbol; absent ones (IPv6 built as a
    // module) are skipped by the plugin, void ones crashed it.
    e("raw_seq_ops", SEQ_OPS),
    e("udp_seq_ops", SEQ_OPS),
    e("arp_seq_ops", SEQ_OPS),
    e("unix_seq_ops", SEQ_OPS),
    e("udp6_seq_ops", SEQ_OPS),
    e("raw6_seq_ops", SEQ_OPS),
    e("tcp_seq_ops", SEQ_OPS),
    e("tcp4_seq_ops", SEQ_OPS),
    e("tcp6_seq_ops", SEQ_OPS),
    e("packet_seq_ops", SEQ_OPS),
    e(
        "net_families",
        &[Array(Count::FromGap, &Ptr(&Struct("net_proto_family")))],
    ),
    // Kernel log, terminals, keyboard, resources, BPF.
    e("prb", &[Ptr(&Struct("printk_ringbuffer"))]),
    e("printk_rb_static", &[Struct("printk_ringbuffer")]),
    e("log_buf", &[Ptr(&Base("char"))]),
    e("log_buf_len", &[Base("unsigned int")]),
    e("tty_drivers", LIST_HEAD),
    e("keyboard_notifier_list", &[Struct("atomic_notifier_head")]),
    e("iomem_resource", &[Struct("resource")]),
    e("ioport_resource", &[Struct("resource")]),
    e("prog_idr", &[Struct("idr")]),
    e("map_idr", &[Struct("idr")]),
    e("link_idr", &[Struct("idr")]),
    e("cap_last_cap", &[Base("int")]),
    e("ftrace_ops_list", &[Ptr(&Struct("ftrace_ops"))]),
    e("ftrace_list_end", &[Struct("ftrace_ops")]),
    e("ftrace_mod_maps", LIST_HEAD),
    // The kallsyms tables (from VMCOREINFO: kallsyms does not list them);
    // linux.kallsyms sizes its reads by kallsyms_num_syms' type.
    e("kallsyms_num_syms", &[Base("unsigned int")]),
    e("kallsyms_relative_base", ULONG),
    // linux.kallsyms (2.2x) walks the ftrace trampolines from here.
    e("ftrace_ops_trampoline_list", LIST_HEAD),
    e("bpf_kallsyms", LIST_HEAD),
    // lsmod's taint letters (2.2x): TAINT_FLAGS_COUNT is a #define, so the
    // count is what fits before the next symbol.
    e(
        "taint_flags",
        &[Array(Count::FromGap, &Struct("taint_flag"))],
    ),
    // Read as `int` offsets with CONFIG_HAVE_ARCH_PREL32_RELOCATIONS; the
    // next symbol is __stop___tracepoints_ptrs, so the count is exact.
    e(
        "__start___tracepoints_ptrs",
        &[
            Array(Count::FromGap, &Typedef("tracepoint_ptr_t")),
            Array(Count::FromGap, &Ptr(&Struct("tracepoint"))),
        ],
    ),
    e(
        "registered_fb",
        &[Array(Count::Fixed(32), &Ptr(&Struct("fb_info")))],
    ),
    e("num_registered_fb", &[Base("int")]),
    // Older kernels' entry points (present only where the kernel has them).
    e("pid_hash", &[Ptr(&Struct("hlist_head"))]),
    e("pidhash_shift", &[Base("unsigned int")]),
    e("log_first_idx", &[Base("unsigned int")]),
    e("log_next_idx", &[Base("unsigned int")]),
    e("log_end", &[Base("unsigned int")]),
    e("module_addr_min", ULONG),
    e("module_addr_max", ULONG),
    e("mem_map", &[Ptr(&Struct("page"))]),
    e(
        "height_to_maxindex",
        &[Array(Count::FromGap, &Base("long unsigned int"))],
    ),
    e(
        "height_to_maxnodes",
        &[Array(Count::FromGap, &Base("long unsigned int"))],
    ),
    // Linker symbols plugins take the address of through an object.
    e("_text", VOID),
    e("_etext", VOID),
    e("_stext", VOID),
    e("_end", VOID),
    e("mount_hashtable", &[Ptr(&Struct("hlist_head"))]),
    // Scheduler classes (pslist's and others' sanity checks).
    e("dl_sched_class", SCHED_CLASS),
    e("fair_sched_class", SCHED_CLASS),
    e("idle_sched_class", SCHED_CLASS),
    e("rt_sched_class", SCHED_CLASS),
    e("stop_sched_class", SCHED_CLASS),
    // Memory layout.
    e("mem_section", &[Ptr(&Ptr(&Struct("mem_section")))]),
    e(
        "node_data",
        &[Array(Count::FromGap, &Ptr(&Struct("pglist_data")))],
    ),
    e("jiffies", ULONG),
    e("jiffies_64", &[Base("long long unsigned int")]),
    e("nr_threads", &[Base("int")]),
    // `unsigned int` since 6.1 (an `int` before): what the plugins and an
    // analyst's volshell read as the number of possible CPUs.
    e("nr_cpu_ids", &[Base("unsigned int")]),
    x86("vmemmap_base", ULONG),
    x86("page_offset_base", ULONG),
    x86("vmalloc_base", ULONG),
    x86("phys_base", ULONG),
    // The system call tables: check_syscall reads them as pointers by its
    // own count, an analyst through this type. NR_syscalls is a #define
    // (not in BTF): the count is what fits before the next symbol, which
    // can include the alignment padding after the table (6.1: 452 slots for
    // 451 system calls).
    x86("sys_call_table", SYSCALLS),
    x86("ia32_sys_call_table", SYSCALLS),
    x86("x32_sys_call_table", SYSCALLS),
    x86(
        "idt_table",
        &[
            Array(Count::Fixed(256), &Struct("gate_struct")),
            Array(Count::Fixed(256), &Typedef("gate_desc")),
        ],
    ),
];
