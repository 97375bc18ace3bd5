/*
 * Resuming a run file (`normscope train --resume`): the file is checked
 * whole, its configuration, optimiser state, last checkpoint and history
 * are read back, and the output starts as a copy of it, so that the loop
 * (train.c) carries on bit for bit where the run stopped.
 */
#include <stdio.h>
#include <string.h>

#include "trainer.h"

int ns_trainer_save_optimizer(ns_hid fid, const ns_optim *o, size_t step, const double *acc3)
{
    size_t dims[1] = {o->n};
    int st = ns_h5_delete(fid, "/optimizer");
    if (!st) st = ns_h5_write_real(fid, "/optimizer/buf1", 1, dims, o->buf1);
    if (!st && o->buf2)
        st = ns_h5_write_real(fid, "/optimizer/buf2", 1, dims, o->buf2);
    if (!st) st = ns_h5_attr_str(fid, "/optimizer", "kind", ns_optim_name(o->kind));
    if (!st) st = ns_h5_attr_int(fid, "/optimizer", "t", (int64_t)o->t);
    if (!st) st = ns_h5_attr_int(fid, "/optimizer", "step", (int64_t)step);
    if (!st) st = ns_h5_attr_doubles(fid, "/optimizer", "epoch_accumulators", acc3, 3);
    if (!st)
        st = ns_h5_attr_str(fid, "/optimizer", "description",
                            "optimiser buffers (SGD momentum, or Adam m and v) after `step` "
                            "steps; epoch_accumulators = loss sum, hits, samples of the "
                            "epoch in progress");
    return st;
}

static int load_optimizer(ns_hid fid, ns_optim *o, size_t *step, double *acc3)
{
    int64_t t, s;
    size_t got;
    int st = ns_h5_get_int(fid, "/optimizer", "t", &t);
    if (!st) st = ns_h5_get_int(fid, "/optimizer", "step", &s);
    if (!st) st = ns_h5_read_real(fid, "/optimizer/buf1", o->buf1, o->n);
    if (!st && o->buf2) st = ns_h5_read_real(fid, "/optimizer/buf2", o->buf2, o->n);
    if (!st) st = ns_h5_get_doubles(fid, "/optimizer", "epoch_accumulators", acc3, 3, &got);
    if (st)
        return st;
    o->t = (uint64_t)t;
    *step = (size_t)s;
    return NS_OK;
}

int ns_trainer_resume_begin(const char *resume, const ns_train_config *c,
                            ns_train_config *cfg, ns_hid *rfid)
{
    /* The file is carried on whole: every checkpoint is checked. */
    int st = ns_run_check(resume);
    if (!st) st = ns_h5_open_format(resume, NS_RUN_FORMAT, rfid);
    if (st)
        return st;
    char status[32] = "";
    ns_h5_get_str(*rfid, ".", "status", status, sizeof status);
    if (strcmp(status, "complete") && strcmp(status, "interrupted"))
        return ns_error(NS_EINVAL, "cannot resume '%s': its status is '%s'", resume, status);
    if ((st = ns_train_config_load(*rfid, cfg)))
        return st;
    /* A new length, or the one the run was started with. */
    if (c->epochs || c->steps) {
        cfg->epochs = c->epochs;
        cfg->steps = c->steps;
    }
    if (!ns_h5_exists(*rfid, "/optimizer"))
        return ns_error(NS_EFORMAT, "cannot resume '%s': no optimiser state", resume);
    return NS_OK;
}

int ns_trainer_resume_state(trainer *T, ns_hid *rfid, const char *resume, const char *out,
                            int force, const char *cmdline, size_t total,
                            size_t *start_step, double *acc3)
{
    int st;
    if ((st = load_optimizer(*rfid, &T->opt, start_step, acc3)))
        return st;
    if ((st = ns_run_read_checkpoint(*rfid, T->net, *start_step)))
        return st;
    if ((st = ns_table_read(&T->ts, *rfid, "/history/step", "weight_norm")) ||
        (st = ns_table_read(&T->te, *rfid, "/history/epoch", NULL)))
        return st;
    if (T->nm) {
        T->tm.names[0] = "step";
        if ((st = ns_table_read(&T->tm, *rfid, "/history/step", T->mname)))
            return st;
    }
    ns_h5_close(*rfid);
    *rfid = NS_HID_INVALID;
    if (*start_step >= total)
        return ns_error(NS_EINVAL, "'%s' already has %zu steps; ask for more with "
                        "--epochs or --steps", resume, *start_step);
    if (strcmp(resume, out) != 0) {
        FILE *f = force ? NULL : fopen(out, "rb");
        if (f) {
            fclose(f);
            return ns_error(NS_EINVAL, "'%s' exists; use --force to overwrite", out);
        }
    }
    if ((st = ns_h5out_from_copy(&T->out, resume, out, force)))
        return st;
    st = ns_h5_delete(T->out.fid, "/history");
    if (!st) st = ns_h5_attr_str(T->out.fid, ".", "status", "running");
    if (!st) st = ns_train_config_save(T->out.fid, &T->cfg);
    if (!st) st = ns_h5_attr_str(T->out.fid, ".", "resumed_by", cmdline ? cmdline : "");
    if (st)
        return st;
    ns_note("resuming '%s' at step %zu of %zu", resume, *start_step, total);
    return NS_OK;
}
