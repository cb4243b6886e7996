package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/config"
	"github.com/latchkey/latchkey/pkg/usage"
	"github.com/latchkey/latchkey/storage/postgres"
)

// plansCommand manages usage plans in the configured database: latchkey
// plans list|create|update|delete|assign|unassign. It goes through
// usage.Manager, as the admin API does, so every change is checked and
// audited the same way.
func plansCommand(e env) *cobra.Command {
	return groupCommand("plans", "Define usage plans and assign them to clients and API keys",
		`Manage the usage plans in the database LATCHKEY_DATABASE_URL names: rates
per second and per minute (per node) and quotas per day and per month
(across all nodes, UTC) on the token, introspection and revocation
endpoints, assigned to a client (client:ID) or an API key (key:ID). Every
node applies a change within two seconds (docs/api-keys.md).`,
		plansListCommand(e), plansCreateCommand(e), plansUpdateCommand(e), plansDeleteCommand(e),
		plansAssignCommand(e, true), plansAssignCommand(e, false))
}

// planRun is one run of a latchkey plans subcommand, or of latchkey usage.
type planRun struct {
	e env
	invocation
	args        []string
	output      *outputFormat
	limits      []string
	description string
	from, to    string
	manager     *usage.Manager
}

// planSubcommand completes cmd, making it run do with a usage.Manager on
// the database.
func planSubcommand(e env, cmd *cobra.Command, do func(context.Context, *planRun) error) (*cobra.Command, *planRun) {
	r := &planRun{e: e}
	return onDatabase(e, cmd, &r.invocation, func() error { return nil }, func(ctx context.Context, _ config.Config, store *postgres.Store, auditLog *audit.Log) error {
		r.manager = usage.NewManager(store, auditLog, nil)
		return do(ctx, r)
	}), r
}

const limitHelp = `A limit is ENDPOINT:NAME=N[,NAME=N...]: ENDPOINT is token, introspect,
revoke or * (all together); NAME is per_second, per_minute, per_day or
per_month. For example --limit token:per_second=20,per_day=10000
--limit '*:per_month=1000000'.`

func plansListCommand(e env) *cobra.Command {
	cmd, r := planSubcommand(e, &cobra.Command{
		Use: "list", Short: "List usage plans", Args: noArgs,
		Long: "List every usage plan with its limits.",
	}, func(ctx context.Context, r *planRun) error {
		plans, err := r.manager.List(ctx)
		if err != nil {
			return err
		}
		if *r.output == outputJSON {
			return writeJSON(r.e.stdout, plans)
		}
		return writePlanTable(r.e.stdout, plans)
	})
	r.output = outputFlag(cmd)
	return cmd
}

func (r *planRun) planFlags(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&r.limits, "limit", nil, "a `LIMIT`, ENDPOINT:NAME=N,...; repeat for each endpoint")
	cmd.Flags().StringVar(&r.description, "description", "", "what the plan is for, for operators")
}

func plansCreateCommand(e env) *cobra.Command {
	cmd, r := planSubcommand(e, &cobra.Command{
		Use: "create NAME", Short: "Define a usage plan", Args: oneArg,
		Long: "Define a usage plan: latchkey plans create partner-gold --limit\ntoken:per_day=10000.\n\n" + limitHelp,
	}, func(ctx context.Context, r *planRun) error {
		limits, err := parseLimits(r.limits)
		if err != nil {
			return err
		}
		p, err := r.manager.Create(ctx, usage.Plan{Name: r.target, Description: r.description, Limits: limits})
		if err != nil {
			return planError(err)
		}
		fmt.Fprintf(r.e.stdout, "plan %s created\n", p.Name)
		return nil
	})
	r.planFlags(cmd)
	return cmd
}

func plansUpdateCommand(e env) *cobra.Command {
	cmd, r := planSubcommand(e, &cobra.Command{
		Use: "update NAME", Short: "Change a usage plan's limits or description", Args: oneArg,
		Long: "Change a usage plan: --limit, if given, replaces all its limits;\n--description its description. Its name never changes.\n\n" + limitHelp,
	}, func(ctx context.Context, r *planRun) error {
		p, err := r.manager.Get(ctx, r.target)
		if err != nil {
			return planError(err)
		}
		if r.given["limit"] {
			if p.Limits, err = parseLimits(r.limits); err != nil {
				return err
			}
		}
		if r.given["description"] {
			p.Description = r.description
		}
		if _, err := r.manager.Update(ctx, *p); err != nil {
			return planError(err)
		}
		fmt.Fprintf(r.e.stdout, "plan %s updated\n", p.Name)
		return nil
	})
	r.planFlags(cmd)
	return cmd
}

func plansDeleteCommand(e env) *cobra.Command {
	cmd, _ := planSubcommand(e, &cobra.Command{
		Use: "delete NAME", Short: "Delete a usage plan, taking it from every subject", Args: oneArg,
		Long: "Delete a usage plan; the clients and keys it was assigned to are then not\nlimited by a plan.",
	}, func(ctx context.Context, r *planRun) error {
		if err := r.manager.Delete(ctx, r.target); err != nil {
			return planError(err)
		}
		fmt.Fprintf(r.e.stdout, "plan %s deleted\n", r.target)
		return nil
	})
	return cmd
}

// plansAssignCommand is latchkey plans assign, or unassign when !assign.
func plansAssignCommand(e env, assign bool) *cobra.Command {
	use, short, long := "assign PLAN SUBJECT", "Give a client or an API key a usage plan",
		"Give SUBJECT, client:ID or key:ID, the plan, in place of any plan it had."
	if !assign {
		use, short, long = "unassign PLAN SUBJECT", "Take a usage plan from a client or an API key",
			"Take the plan from SUBJECT, client:ID or key:ID; it is then not limited by a plan."
	}
	var r *planRun
	cmd, r := planSubcommand(e, &cobra.Command{
		Use: use, Short: short, Long: long,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageError("want a plan and a subject; usage: %s", cmd.UseLine())
			}
			r.args = args
			return nil
		},
	}, func(ctx context.Context, r *planRun) error {
		plan, subject := r.args[0], r.args[1]
		if assign {
			if err := r.manager.Assign(ctx, plan, subject); err != nil {
				return planError(err)
			}
			fmt.Fprintf(r.e.stdout, "%s has plan %s\n", subject, plan)
			return nil
		}
		if err := r.manager.Unassign(ctx, plan, subject); err != nil {
			return planError(err)
		}
		fmt.Fprintf(r.e.stdout, "%s does not have plan %s\n", subject, plan)
		return nil
	})
	return cmd
}

// usageCommand reports a client's or API key's calls: latchkey usage
// SUBJECT.
func usageCommand(e env) *cobra.Command {
	cmd, r := planSubcommand(e, &cobra.Command{
		Use: "usage SUBJECT", Short: "Report a client's or API key's calls by day and endpoint", Args: oneArg,
		Long: `Report the calls of SUBJECT, client:ID or key:ID, to the token, introspection
and revocation endpoints, by UTC day and endpoint: served, and refused with
429 by its plan. Nodes write their counts every five seconds.`,
	}, func(ctx context.Context, r *planRun) error {
		to := time.Now().UTC()
		from := to.AddDate(0, 0, -29)
		for _, d := range []struct {
			flag, value string
			at          *time.Time
		}{{"from", r.from, &from}, {"to", r.to, &to}} {
			if d.value == "" {
				continue
			}
			t, err := time.Parse(time.DateOnly, d.value)
			if err != nil {
				return usageError("--%s must be a day, YYYY-MM-DD", d.flag)
			}
			*d.at = t
		}
		days, err := r.manager.Usage(ctx, r.target, from, to)
		if err != nil {
			return planError(err)
		}
		if *r.output == outputJSON {
			if days == nil {
				days = []usage.Daily{}
			}
			return writeJSON(r.e.stdout, days)
		}
		tw := tabwriter.NewWriter(r.e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DAY\tENDPOINT\tSERVED\tREFUSED")
		for _, d := range days {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", d.Day.UTC().Format(time.DateOnly), d.Endpoint, d.Served, d.Refused)
		}
		return tw.Flush()
	})
	cmd.Flags().StringVar(&r.from, "from", "", "the first UTC `DAY`, YYYY-MM-DD (default 29 days before --to)")
	cmd.Flags().StringVar(&r.to, "to", "", "the last UTC `DAY`, YYYY-MM-DD (default today)")
	r.output = outputFlag(cmd)
	return cmd
}

// parseLimits reads --limit values.
func parseLimits(specs []string) ([]usage.Limit, error) {
	var limits []usage.Limit
	for _, spec := range specs {
		endpoint, rest, ok := strings.Cut(spec, ":")
		if !ok || rest == "" {
			return nil, usageError("--limit %q: want ENDPOINT:NAME=N, such as token:per_day=1000", spec)
		}
		l := usage.Limit{Endpoint: endpoint}
		for part := range strings.SplitSeq(rest, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(part), "=")
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil {
				return nil, usageError("--limit %q: %s must be a whole number", spec, name)
			}
			switch name {
			case "per_second":
				l.PerSecond = n
			case "per_minute":
				l.PerMinute = n
			case "per_day":
				l.PerDay = n
			case "per_month":
				l.PerMonth = n
			default:
				return nil, usageError("--limit %q: %q is not per_second, per_minute, per_day or per_month", spec, name)
			}
		}
		limits = append(limits, l)
	}
	return limits, nil
}

// planError says what went wrong in the operator's terms.
func planError(err error) error {
	switch {
	case errors.Is(err, usage.ErrNotFound):
		return errors.New("no plan has this name; latchkey plans list shows them")
	case errors.Is(err, usage.ErrExists):
		return errors.New("a plan with this name already exists; latchkey plans update changes it")
	}
	return err
}

func writePlanTable(w io.Writer, plans []usage.Plan) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tLIMITS\tDESCRIPTION")
	for _, p := range plans {
		var ls []string
		for _, l := range p.Limits {
			var parts []string
			for _, f := range []struct {
				name string
				n    int64
			}{{"per_second", l.PerSecond}, {"per_minute", l.PerMinute}, {"per_day", l.PerDay}, {"per_month", l.PerMonth}} {
				if f.n != 0 {
					parts = append(parts, fmt.Sprintf("%s=%d", f.name, f.n))
				}
			}
			ls = append(ls, l.Endpoint+":"+strings.Join(parts, ","))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Name, strings.Join(ls, " "), orDash(p.Description))
	}
	return tw.Flush()
}
