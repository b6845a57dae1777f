package sd

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/godbus/dbus/v5"
)

// ErrNoJob is RestartPending's answer for a process whose unit has no job:
// it was not stopped by systemd (a signal sent by hand, say).
var ErrNoJob = errors.New("sd: no systemd job for this service")

// RestartPending asks systemd, over D-Bus, which job its unit of this
// process runs: true for a restart (systemctl restart, try-restart, a
// package upgrade), false for a stop. A service told to stop keeps nothing
// in its file descriptor store, so only a restart may hand sessions on.
//
// D-Bus is used because nothing else tells the two apart: both send the
// same signal. The bus is the system bus (/run/dbus/system_bus_socket);
// the calls (GetUnitByPID and two properties) need no privilege.
func RestartPending(ctx context.Context) (bool, error) {
	conn, err := dbus.ConnectSystemBus(dbus.WithContext(ctx))
	if err != nil {
		return false, fmt.Errorf("sd: system bus: %w", err)
	}
	defer conn.Close()
	const dest = "org.freedesktop.systemd1"
	var unit dbus.ObjectPath
	err = conn.Object(dest, "/org/freedesktop/systemd1").
		CallWithContext(ctx, dest+".Manager.GetUnitByPID", 0, uint32(os.Getpid())).Store(&unit)
	if err != nil {
		return false, fmt.Errorf("sd: GetUnitByPID: %w", err)
	}
	var job struct {
		ID   uint32
		Path dbus.ObjectPath
	}
	if err := property(ctx, conn.Object(dest, unit), dest+".Unit", "Job", &job); err != nil {
		return false, err
	}
	if job.ID == 0 {
		return false, ErrNoJob
	}
	var jobType string
	if err := property(ctx, conn.Object(dest, job.Path), dest+".Job", "JobType", &jobType); err != nil {
		return false, err
	}
	switch jobType {
	case "restart", "try-restart", "reload-or-restart", "try-reload-or-restart":
		return true, nil
	}
	return false, nil
}

// property reads one D-Bus property of obj into out.
func property(ctx context.Context, obj dbus.BusObject, iface, name string, out any) error {
	var v dbus.Variant
	if err := obj.CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, iface, name).Store(&v); err != nil {
		return fmt.Errorf("sd: %s.%s: %w", iface, name, err)
	}
	if err := v.Store(out); err != nil {
		return fmt.Errorf("sd: %s.%s: %w", iface, name, err)
	}
	return nil
}
