package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey/pkg/trust"
)

// usersTrustedDevicesCommand lists the browsers a user trusts to skip the
// second factor (pkg/trust).
func usersTrustedDevicesCommand(e env) *cobra.Command {
	cmd, r := usersSubcommand(e, &cobra.Command{
		Use:   "trusted-devices USER",
		Short: "List the browsers a user trusts to skip the second factor",
		Long: "Lists the browsers on which the user ticked \"Don't ask again on this browser\"\n" +
			"at the second-factor step, newest first, with when each was last used and when\n" +
			"its trust ends. forget-devices forgets them.\n\n" + userArgHelp,
		Args: oneArg,
	}, usersTrustedDevices)
	r.output = outputFlag(cmd)
	return cmd
}

// usersTrustedDevices prints the user's trusted browsers.
func usersTrustedDevices(ctx context.Context, r *usersRun) error {
	u, err := r.find(ctx)
	if err != nil {
		return err
	}
	devices, err := r.trust.List(ctx, u.ID)
	if err != nil {
		return err
	}
	if *r.output == outputJSON {
		if devices == nil {
			devices = []trust.Device{}
		}
		return writeJSON(r.e.stdout, devices)
	}
	return writeTrustedDevices(r.e.stdout, devices)
}

// usersForgetDevices forgets every browser the user trusts.
func usersForgetDevices(ctx context.Context, r *usersRun) error {
	u, err := r.find(ctx)
	if err != nil {
		return err
	}
	n, err := r.trust.ForgetAll(ctx, u.ID)
	if err != nil {
		return usersError(r.target, u.Email, err)
	}
	fmt.Fprintf(r.e.stdout, "forgot %d trusted %s of %s (%s)\n", n, plural(n, "browser"), u.Email, u.ID)
	return nil
}

// writeTrustedDevices writes one trusted browser a line.
func writeTrustedDevices(w io.Writer, devices []trust.Device) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tBROWSER\tLAST USED\tEXPIRES")
	for _, d := range devices {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.ID, d.Label,
			d.LastUsedAt.UTC().Format(time.RFC3339), d.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

// plural is unit, with an s unless n is 1.
func plural(n int64, unit string) string {
	if n == 1 {
		return unit
	}
	return unit + "s"
}
