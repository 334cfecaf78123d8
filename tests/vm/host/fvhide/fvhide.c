// SPDX-License-Identifier: GPL-2.0
/*
 * The VM bench's stand-in for a rootkit (issue 26). On load it unlinks its
 * own struct module from the kernel's module list, as rootkits hide
 * (list_del of THIS_MODULE->list: Diamorphine, Reptile and others), so
 * /proc/modules and lsmod no longer list it, while its struct module stays
 * in the module area, where Volatility's linux.hidden_modules carves for
 * it. Its parameter carries a token the host looks for in the plugin's
 * output (the parameters are read through struct kernel_param, which the
 * symbol table must type). Built by tests/vm/lib.sh (build_fvhide) against
 * the guest kernel's headers; loaded by the capture scenario's guest.
 */
#include <linux/init.h>
#include <linux/module.h>
#include <linux/rculist.h>

static char *token = "";
module_param(token, charp, 0);
MODULE_PARM_DESC(token, "a string the host looks for in Volatility's output");

static int number = 4242;
module_param(number, int, 0);
MODULE_PARM_DESC(number, "an integer the host looks for in Volatility's output");

/*
 * Code that outlives init, as a rootkit's hooks do. Without any, the core
 * text would be empty and Volatility's carving (module.is_valid: core text
 * size > 0) takes the struct module for a failed load and skips it.
 */
static noinline __used int fvhide_hook(int x)
{
	return x + number;
}

static int __init fvhide_init(void)
{
	/* No module_exit: hidden, it can never be unloaded (as a rootkit). */
	list_del_rcu(&THIS_MODULE->list);
	return 0;
}
module_init(fvhide_init);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("forensics volume VM bench: a module that hides itself");
