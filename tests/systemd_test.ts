// deno-lint-ignore-file no-console
/**
 * The shipped units under a real systemd: a Debian bookworm machine (systemd 252, containerd
 * 1.6.20 and node_exporter from Debian) booted with systemd-nspawn, ctre installed into it with
 * `scripts/install.sh --from-source --enable` as an operator would (deno compile cannot run
 * here). Checks what an operator meets: the recorder records a container started inside, comes
 * back after SIGKILL and follows a containerd restart; prune (dry run from /etc/default/ctre, then
 * forced) and its timer work; node_exporter, an unprivileged user, reads the metrics but nobody
 * can list the state dir or read the usage DB; a missing state dir is recreated instead of a
 * restart loop; V8's pkey_alloc is allowed by the seccomp filter. Prints the journal of each unit
 * (what docs/operator-guide.md quotes).
 *
 * Not named e2e_*: it runs once per CI run, whatever containerd version the run is for (the
 * machine has its own). Needs root and the rootfs that scripts/setup_systemd.sh caches.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { buildOciTar } from "./support/oci_image.ts";
import { cachedRootfs, Machine, waitFor } from "./support/machine.ts";

const REPO = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
const SPOOL = "/var/spool/ctre";
const NOBODY = "setpriv --reuid=65534 --regid=65534 --clear-groups";

/** The usage DB's start time for (namespace, ref), or undefined. */
async function startOf(m: Machine, ns: string, ref: string): Promise<number | undefined> {
  const db = await m.sh(`cat ${SPOOL}/image_starts`);
  for (const line of db.stdout.split("\n")) {
    const [start, , n, r] = line.split(" ");
    if (n === ns && r === ref) return Number(start);
  }
  return undefined;
}

async function journal(m: Machine, unit: string): Promise<string> {
  return (await m.sh(`journalctl -u ${unit} --no-pager -o short-iso`)).stdout;
}

async function dropIn(m: Machine, unit: string, name: string, text: string | null): Promise<void> {
  const dir = `/run/systemd/system/${unit}.d`;
  if (text === null) await m.ok(`rm -f ${dir}/${name}.conf`);
  else await m.ok(`mkdir -p ${dir} && cat > ${dir}/${name}.conf <<'EOF'\n${text}\nEOF`);
  await m.ok("systemctl daemon-reload");
}

/**
 * Waits until the recorder runs with a main PID other than `not` and follows `ctr event` (a
 * child `ctr event` has been up for a second); returns its PID.
 */
function recorderUp(m: Machine, not = "0"): Promise<string> {
  const state = () => m.show("ctre-record.service", "ActiveState", "SubState", "MainPID");
  return waitFor("ctre-record.service to run and follow ctr event", async () => {
    const s = await state();
    if (s.ActiveState !== "active" || s.SubState !== "running") return undefined;
    if (s.MainPID === not || s.MainPID === "0") return undefined;
    const procs = await m.sh(
      "for p in $(cat /sys/fs/cgroup/systemd/system.slice/ctre-record.service/cgroup.procs); " +
        "do tr '\\0' ' ' </proc/$p/cmdline; echo; done",
    );
    if (!/ctr.* event/.test(procs.stdout)) return undefined;
    await new Promise((r) => setTimeout(r, 1000));
    return (await state()).MainPID === s.MainPID ? s.MainPID : undefined;
  }, 60_000);
}

/** Runs ctre-prune.service once (systemctl start waits for a oneshot); its result. */
async function prune(m: Machine): Promise<{ code: number; result: string; status: string }> {
  const r = await m.sh("systemctl start ctre-prune.service");
  const s = await m.show("ctre-prune.service", "Result", "ExecMainStatus");
  return { code: r.code, result: s.Result!, status: s.ExecMainStatus! };
}

Deno.test("the shipped units under a real systemd (nspawn machine)", async (t) => {
  const t0 = Date.now();
  const rootfs = await cachedRootfs();
  const deno = Deno.execPath();
  const m = await Machine.create(rootfs, [`${REPO}:/usr/src/ctre`, `${deno}:/opt/deno/deno`]);
  try {
    // Before boot: node_exporter's textfile collector pointed at ctre's metrics, as docs/operator-guide.md
    // says; two images to import (one run, one left unused for prune).
    await Deno.writeTextFile(
      join(m.root, "etc/default/prometheus-node-exporter"),
      `ARGS="--collector.textfile.directory=${SPOOL}/metrics"\n`,
    );
    // A persistent journal, to print it whole after the reboot.
    await Deno.mkdir(join(m.root, "var/log/journal"), { recursive: true });
    await Deno.mkdir(join(m.root, "var/tmp/images"), { recursive: true });
    await buildOciTar(join(m.root, "var/tmp/images/app.tar"), "ctre.test/app:1", "app");
    await buildOciTar(join(m.root, "var/tmp/images/old.tar"), "ctre.test/old:1", "old");
    await m.boot();
    console.log(`machine up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    await t.step(
      "install.sh --from-source --enable starts the recorder and the timer",
      async () => {
        await m.ok("systemctl is-active containerd.service");
        await m.ok(
          "bash /usr/src/ctre/scripts/install.sh --from-source --deno /opt/deno/deno --enable",
        );
        await recorderUp(m);
        const timers = await m.ok("systemctl list-timers --all --no-legend ctre-prune.timer");
        assert.match(timers, /ctre-prune\.timer\s+ctre-prune\.service/, timers);
        assert.equal((await m.ok("systemctl is-enabled ctre-record.service")).trim(), "enabled");
        assert.equal((await m.ok("systemctl is-enabled ctre-prune.timer")).trim(), "enabled");
        // The installed ctre holds exactly the shipped permissions (doctor asks Deno).
        const doctor = JSON.parse((await m.sh("ctre doctor --json")).stdout);
        const held = doctor.checks.find((c: { name: string }) => c.name === "permissions held");
        assert.equal(held.detail, `run ctr, read ${SPOOL}, write ${SPOOL}`);
      },
    );

    await t.step("the recorder records a container started inside", async () => {
      await m.ok("ctr -n default image import /var/tmp/images/app.tar");
      await m.ok("ctr -n default image import /var/tmp/images/old.tar");
      await m.ctrRun("default", "ctre.test/app:1", "app1", "sleep", "3600");
      await waitFor(
        "app:1's start in the usage DB",
        () => startOf(m, "default", "ctre.test/app:1"),
      );
    });

    await t.step(
      "SIGKILL: the recorder comes back (Restart=always) and records again",
      async () => {
        const pid = await recorderUp(m);
        const before = (await startOf(m, "default", "ctre.test/app:1"))!;
        await m.ok("systemctl kill --signal=SIGKILL ctre-record.service");
        const again = await recorderUp(m, pid);
        assert.notEqual(again, pid);
        assert.equal((await m.show("ctre-record.service", "NRestarts")).NRestarts, "1");
        await m.ctrRun("default", "ctre.test/app:1", "app2", "sleep", "3600");
        await waitFor("app2's start recorded", async () => {
          const s = await startOf(m, "default", "ctre.test/app:1");
          return s !== undefined && s > before ? s : undefined;
        });
      },
    );

    await t.step("metrics: node_exporter reads them; the state dir is not listable", async () => {
      await waitFor(
        "the recorder's metrics",
        () =>
          m.sh(`grep -q ctre_recorder_events_total ${SPOOL}/metrics/ctre.prom`).then((r) =>
            r.code === 0 ? true : undefined
          ),
      );
      const modes = await m.ok(
        `stat -c '%a %n' ${SPOOL} ${SPOOL}/metrics ${SPOOL}/metrics/ctre.prom ${SPOOL}/metrics/.lock ` +
          `${SPOOL}/image_starts ${SPOOL}/record-image-starts.lock`,
      );
      assert.deepEqual(modes.trim().split("\n"), [
        `711 ${SPOOL}`,
        `755 ${SPOOL}/metrics`,
        `644 ${SPOOL}/metrics/ctre.prom`,
        `600 ${SPOOL}/metrics/.lock`,
        `600 ${SPOOL}/image_starts`,
        `600 ${SPOOL}/record-image-starts.lock`,
      ]);
      // An unprivileged user: reads the metrics, cannot list the state dir or read the DB.
      assert.match(await m.ok(`${NOBODY} cat ${SPOOL}/metrics/ctre.prom`), /ctre_recorder_/);
      const list = await m.sh(`${NOBODY} ls ${SPOOL}`);
      assert.notEqual(list.code, 0);
      assert.match(list.stderr, /Permission denied/);
      const db = await m.sh(`${NOBODY} cat ${SPOOL}/image_starts`);
      assert.match(db.stderr, /Permission denied/);
      const lock = await m.sh(`${NOBODY} flock -n ${SPOOL}/record-image-starts.lock true`);
      assert.notEqual(lock.code, 0, "nobody cannot open (and hold) a lock");
      // Debian's node_exporter, as user prometheus, serves them.
      await m.ok("systemctl restart prometheus-node-exporter.service");
      assert.equal(
        (await m.show("prometheus-node-exporter.service", "User")).User,
        "prometheus",
      );
      const scrape = await waitFor("node_exporter's /metrics", async () => {
        const r = await m.exec("/opt/deno/deno", [
          "eval",
          "console.log(await (await fetch('http://127.0.0.1:9100/metrics')).text())",
        ]);
        return r.code === 0 ? r.stdout : undefined;
      });
      assert.match(scrape, /^node_textfile_scrape_error 0$/m);
      assert.match(scrape, /^ctre_recorder_events_total \d+$/m);
    });

    await t.step("prune: a dry run from /etc/default/ctre, then forced", async () => {
      // Everything unused is old enough in this test.
      await m.ok(
        `sed -i 's/^CTRE_PRUNE_ARGS=.*/CTRE_PRUNE_ARGS=--min-age 0 --used-within 0 --double-check 0/' ` +
          `/etc/default/ctre && echo CTRE_PRUNE_MODE=dry-run >> /etc/default/ctre`,
      );
      const dry = await prune(m);
      assert.deepEqual(dry, { code: 0, result: "success", status: "0" });
      assert.match(await m.ok("ctr -n default image ls -q"), /ctre\.test\/old:1/);
      assert.match(await journal(m, "ctre-prune.service"), /ctre\.test\/old:1/);
      await m.ok("sed -i '/^CTRE_PRUNE_MODE=/d' /etc/default/ctre");
      const forced = await prune(m);
      assert.deepEqual(forced, { code: 0, result: "success", status: "0" });
      const images = await m.ok("ctr -n default image ls -q");
      assert.doesNotMatch(images, /ctre\.test\/old:1/);
      assert.match(images, /ctre\.test\/app:1/, "in use: kept");
      assert.match(
        await m.ok(`${NOBODY} cat ${SPOOL}/metrics/ctre.prom`),
        /^ctre_prune_success 1$/m,
      );
    });

    await t.step("the timer fires ctre-prune.service", async () => {
      const before = await m.show("ctre-prune.service", "InvocationID");
      const last = (await m.show("ctre-prune.timer", "LastTriggerUSec")).LastTriggerUSec;
      // The daily calendar, made every few seconds for the test, until it has fired once.
      await dropIn(
        m,
        "ctre-prune.timer",
        "often",
        "[Timer]\nOnCalendar=\nOnCalendar=*:*:0/3\nRandomizedDelaySec=0\nAccuracySec=1s",
      );
      try {
        await m.ok("systemctl restart ctre-prune.timer");
        await waitFor("the timer to trigger", async () => {
          const s = await m.show("ctre-prune.timer", "LastTriggerUSec");
          return s.LastTriggerUSec !== last && s.LastTriggerUSec !== "n/a" ? true : undefined;
        });
      } finally {
        await dropIn(m, "ctre-prune.timer", "often", null);
        await m.ok("systemctl restart ctre-prune.timer");
      }
      await waitFor("the prune it started to succeed", async () => {
        const s = await m.show("ctre-prune.service", "InvocationID", "Result", "ActiveState");
        return s.InvocationID !== before.InvocationID && s.ActiveState === "inactive" &&
            s.Result === "success"
          ? true
          : undefined;
      });
      // Back to daily, with its randomized delay.
      assert.match(await m.ok("systemctl cat ctre-prune.timer"), /^OnCalendar=daily$/m);
      assert.doesNotMatch(await m.ok("systemctl cat ctre-prune.timer"), /0\/3/);
    });

    await t.step("containerd down: prune fails; back up: the recorder follows", async () => {
      const pid = await recorderUp(m);
      await m.ok("systemctl stop containerd.service");
      const failed = await prune(m);
      assert.notEqual(failed.code, 0);
      assert.equal(failed.result, "exit-code");
      assert.equal(failed.status, "1");
      await m.ok("systemctl start containerd.service");
      await m.ok("systemctl reset-failed ctre-prune.service");
      const before = (await startOf(m, "default", "ctre.test/app:1"))!;
      // The same recorder process reconnects (no restart) and records again. Its metrics said
      // it lost containerd (reconnects ≥ 1) and now that it follows events again (connected 1).
      await waitFor("the recorder to reconnect", async () => {
        const r = await m.sh(
          `grep -qE '^ctre_recorder_reconnects_total [1-9]' ${SPOOL}/metrics/ctre.prom && ` +
            `grep -qx 'ctre_recorder_connected 1' ${SPOOL}/metrics/ctre.prom`,
        );
        return r.code === 0 ? true : undefined;
      }, 60_000);
      assert.equal(await recorderUp(m), pid, "the same process");
      await m.ctrRun("default", "ctre.test/app:1", "app3", "sleep", "3600");
      await waitFor("app3's start recorded", async () => {
        const s = await startOf(m, "default", "ctre.test/app:1");
        return s !== undefined && s > before ? s : undefined;
      }, 40_000);
    });

    await t.step("@pkey: with seccomp in kill mode the recorder and prune still run", async () => {
      // The shipped SystemCallErrorNumber=EPERM hides a denied call; kill mode shows it.
      const kill = "[Service]\nSystemCallErrorNumber=kill";
      try {
        await dropIn(m, "ctre-record.service", "kill", kill);
        await dropIn(m, "ctre-prune.service", "kill", kill);
        const pid = await m.show("ctre-record.service", "MainPID");
        await m.ok("systemctl restart ctre-record.service");
        const up = await recorderUp(m, pid.MainPID);
        assert.deepEqual(await prune(m), { code: 0, result: "success", status: "0" });
        await new Promise((r) => setTimeout(r, 2000));
        assert.equal((await m.show("ctre-record.service", "MainPID")).MainPID, up, "still up");
        // Without @pkey, kill mode kills it at start-up: the status=31/SYS.
        await dropIn(m, "ctre-record.service", "nopkey", "[Service]\nSystemCallFilter=~@pkey");
        await m.ok("systemctl restart ctre-record.service");
        await waitFor("the recorder to die of SIGSYS", async () => {
          const s = await m.show("ctre-record.service", "ExecMainCode", "ExecMainStatus");
          // ExecMainCode 2 = killed by a signal; 31 = SIGSYS.
          return s.ExecMainCode === "2" && s.ExecMainStatus === "31" ? true : undefined;
        });
      } finally {
        await dropIn(m, "ctre-record.service", "nopkey", null);
        await dropIn(m, "ctre-record.service", "kill", null);
        await dropIn(m, "ctre-prune.service", "kill", null);
        await m.ok("systemctl restart ctre-record.service");
      }
      await recorderUp(m);
    });

    await t.step("a missing state dir is recreated, not a restart loop", async () => {
      await m.ok(`systemctl stop ctre-record.service && rm -rf ${SPOOL}`);
      // The units as they were (no tmpfiles step, ReadWritePaths= without "-"): the issue's
      // restart loop, 226/NAMESPACE.
      await dropIn(
        m,
        "ctre-record.service",
        "noprep",
        "[Service]\nExecStartPre=\nReadWritePaths=\nReadWritePaths=/var/spool/ctre",
      );
      try {
        await m.ok("systemctl start ctre-record.service");
        await waitFor("the recorder to fail at namespacing", async () => {
          const s = await m.show("ctre-record.service", "ExecMainStatus");
          return s.ExecMainStatus === "226" ? true : undefined;
        });
        await m.ok("systemctl stop ctre-record.service");
      } finally {
        await dropIn(m, "ctre-record.service", "noprep", null);
      }
      await m.ok("systemctl reset-failed ctre-record.service; systemctl start ctre-record.service");
      await recorderUp(m);
      assert.equal(
        await m.ok(`stat -c '%a' ${SPOOL} ${SPOOL}/metrics`),
        "711\n755\n",
      );
      // A state dir left 0700 by an older install is made traversable at the next start.
      await m.ok(`chmod 0700 ${SPOOL} && systemctl restart ctre-record.service`);
      await recorderUp(m);
      assert.equal(await m.ok(`stat -c '%a' ${SPOOL}`), "711\n");
      // And at boot, from /etc/tmpfiles.d/ctre.conf: reboot without the dir.
      await m.stop();
      await Deno.remove(join(m.root, SPOOL.slice(1)), { recursive: true });
      await m.boot();
      await recorderUp(m);
      assert.equal(await m.ok(`stat -c '%a' ${SPOOL} ${SPOOL}/metrics`), "711\n755\n");
      assert.match(
        await m.ok("systemctl list-timers --all --no-legend ctre-prune.timer"),
        /ctre-prune\.timer/,
      );
    });

    for (const unit of ["ctre-record.service", "ctre-prune.service"]) {
      console.log(`--- journalctl -u ${unit}\n${await journal(m, unit)}`);
    }
    console.log(`whole run ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  } catch (e) {
    console.log(`--- machine console\n${m.console.slice(-4000)}`);
    for (const unit of ["ctre-record.service", "ctre-prune.service"]) {
      console.log(`--- journalctl -u ${unit}\n${await journal(m, unit).catch(() => "")}`);
    }
    throw e;
  } finally {
    await m.destroy();
  }
});
