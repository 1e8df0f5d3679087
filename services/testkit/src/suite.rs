//! `backend_suite!`: one behavioural suite, run against every backend — parameterized, not
//! copied.

/// Generates, for each backend, a module with one `#[tokio::test]` per case. Each test builds
/// its own fixture with `<Fixture>::new(backend).await` and calls `suite::case(fixture)`:
///
/// ```ignore
/// backend_suite!(TestBus { redis_backend => Backend::Redis, memory_backend => Backend::Memory };
///     cases; [first_case, second_case]);
/// ```
#[macro_export]
macro_rules! backend_suite {
    ($fixture:ty { $($module:ident => $backend:expr),+ $(,)? }; $suite:path; $cases:tt) => {
        $( $crate::backend_suite!(@module $fixture, $module, $backend, $suite, $cases); )+
    };
    (@module $fixture:ty, $module:ident, $backend:expr, $suite:path, [$($case:ident),+ $(,)?]) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    let fixture = <$fixture>::new($backend).await;
                    {
                        use $suite as suite;
                        suite::$case(fixture).await;
                    }
                }
            )+
        }
    };
}

/// The bus suite on both bus backends.
#[macro_export]
macro_rules! bus_suite {
    ($suite:path; $($case:ident),+ $(,)?) => {
        $crate::backend_suite!($crate::bus::TestBus {
            redis_backend => $crate::bus::Backend::Redis,
            memory_backend => $crate::bus::Backend::Memory,
        }; $suite; [$($case),+]);
    };
}

/// The store suite on both store backends.
#[macro_export]
macro_rules! store_suite {
    ($suite:path; $($case:ident),+ $(,)?) => {
        $crate::backend_suite!($crate::store::TestStore {
            postgres_backend => $crate::store::StoreBackend::Postgres,
            sqlite_backend => $crate::store::StoreBackend::Sqlite,
            mongodb_backend => $crate::store::StoreBackend::Mongo,
            sink_backend => $crate::store::StoreBackend::Sink,
        }; $suite; [$($case),+]);
    };
}
