import { QueryClient, QueryClientProvider, useQueryClient } from "@tanstack/react-query";
import { useEffect } from "react";
import { createBrowserRouter, Navigate, NavLink, Outlet, RouterProvider, useLocation } from "react-router";
import { AccessProvider, useAccess } from "./hooks/access";
import { useToken } from "./hooks/session";
import { ApiProblem } from "./lib/problem";
import { session } from "./lib/session";
import { isRetryable } from "./lib/sse";
import { AuditPage } from "./pages/Audit";
import { CreateStorePage } from "./pages/CreateStore";
import { FleetPage } from "./pages/Fleet";
import { OperationPage, OperationsPage } from "./pages/Operations";
import { RunDetailPage } from "./pages/RunDetail";
import { RunsPage } from "./pages/Runs";
import { SignInPage } from "./pages/SignIn";
import { StoreDetailPage } from "./pages/StoreDetail";
import { StoresPage } from "./pages/Stores";
import { TokensPage } from "./pages/Tokens";
import { btn } from "./components/ui";

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      // Outages and 429s are retried; a refusal (4xx) is shown at once.
      retry: (count, error) => count < 2 && error instanceof ApiProblem && isRetryable(error),
      refetchOnWindowFocus: false,
    },
  },
});

function RequireToken() {
  const token = useToken();
  const location = useLocation();
  if (!token) return <Navigate to="/sign-in" replace state={{ from: location.pathname + location.search }} />;
  return <Layout />;
}

function Layout() {
  const { access, can } = useAccess();
  const link = ({ isActive }: { isActive: boolean }) =>
    `rounded-md px-2 py-1 text-sm font-medium ${isActive ? "bg-slate-800 text-white" : "text-slate-200 hover:bg-slate-700"}`;
  return (
    <div className="min-h-screen">
      <a href="#main" className="sr-only focus:not-sr-only focus:absolute focus:m-2 focus:rounded focus:bg-white focus:p-2">
        Skip to content
      </a>
      <header className="bg-slate-900 text-white">
        <div className="mx-auto flex max-w-6xl items-center gap-4 px-4 py-3">
          <span className="font-semibold">Urumi</span>
          <nav aria-label="Main" className="flex gap-1">
            <NavLink to="/stores" end className={link}>
              Stores
            </NavLink>
            {can("create_store").visible && (
              <NavLink to="/stores/new" className={link}>
                Create store
              </NavLink>
            )}
            <NavLink to="/runs" className={link}>
              Runs
            </NavLink>
            <NavLink to="/operations" className={link}>
              Operations
            </NavLink>
            <NavLink to="/fleet" className={link}>
              Fleet
            </NavLink>
            <NavLink to="/audit" className={link}>
              Audit
            </NavLink>
            {can("manage_tokens").visible && (
              <NavLink to="/tokens" className={link}>
                Tokens
              </NavLink>
            )}
          </nav>
          <p className="ml-auto text-xs text-slate-300" data-testid="whoami">
            {access.name ? `${access.name} · ` : ""}
            {access.role ? `role: ${access.role}` : "role: not known yet"}
          </p>
          <button type="button" className="rounded-md px-2 py-1 text-sm text-slate-200 hover:bg-slate-700" onClick={() => session.signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" className="mx-auto max-w-6xl px-4 py-6">
        <Outlet />
      </main>
    </div>
  );
}

function NotFound() {
  return (
    <div>
      <h1 className="text-xl font-semibold">Not found</h1>
      <p className="mt-2">
        <NavLink className={btn.secondary} to="/stores">
          Back to stores
        </NavLink>
      </p>
    </div>
  );
}

const router = createBrowserRouter(
  [
    { path: "/sign-in", element: <SignInPage /> },
    {
      element: <RequireToken />,
      children: [
        { index: true, element: <Navigate to="/stores" replace /> },
        { path: "/stores", element: <StoresPage /> },
        { path: "/stores/new", element: <CreateStorePage /> },
        { path: "/stores/:id", element: <StoreDetailPage /> },
        { path: "/runs", element: <RunsPage /> },
        { path: "/runs/:id", element: <RunDetailPage /> },
        { path: "/operations", element: <OperationsPage /> },
        { path: "/operations/:id", element: <OperationPage /> },
        { path: "/fleet", element: <FleetPage /> },
        { path: "/audit", element: <AuditPage /> },
        { path: "/tokens", element: <TokensPage /> },
        { path: "*", element: <NotFound /> },
      ],
    },
  ],
  { basename: import.meta.env.BASE_URL.replace(/\/$/, "") },
);

/** Whatever was cached belongs to the token that fetched it: signing out empties the cache. */
function ClearOnSessionChange() {
  const qc = useQueryClient();
  useEffect(
    () =>
      session.subscribe(() => {
        if (session.token() === null) qc.clear();
      }),
    [qc],
  );
  return null;
}

export function App() {
  return (
    <QueryClientProvider client={queryClient}>
      <ClearOnSessionChange />
      <AccessProvider>
        <RouterProvider router={router} />
      </AccessProvider>
    </QueryClientProvider>
  );
}
