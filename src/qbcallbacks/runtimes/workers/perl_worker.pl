# perl_worker.pl: a warm Perl worker of qbcallbacks; runs callbacks one at a time for the host.
#
# Started as `perl perl_worker.pl <read fd> <write fd>`; speaks the line-per-JSON-object
# protocol described in qbcallbacks/runtimes/pool.py. The first message is `init`, carrying
# the generated `qb` module, which is compiled here and registered in %INC so that scripts
# see `$qb::jobid` and `qb::` functions and `use qb;` works too.
#
# A script may do anything: `die` and `exit` end only the callback (exit is overridden to
# throw); a hang, `POSIX::_exit` or a signal end the worker, and the host replaces it.
#
# Every run starts clean: the script runs in a fresh package that is deleted afterwards; the
# punctuation variables ($/ $, $\ $" $;) are localized; descriptors 0-2, %ENV, @INC, the umask,
# %SIG, pending alarms and every sub of the qb, QbWorker and CORE::GLOBAL packages are put back
# after it. Whatever symbol the run added to any package (a `$main::` or `our` variable, a
# package it declared, a module it loaded: its %INC entry goes too, so the next `use` loads it
# afresh) is deleted, and its END blocks run when it ends, as a script's do when perl exits,
# instead of piling up for the worker's own exit. A run that leaves a file descriptor open,
# empties one of those subs in place (`undef &qb::jobid`: its body cannot be put back) or
# loads a compiled (XS) module, which cannot be unloaded, ends with the worker (the `done`
# message says why and the worker exits; the host starts a fresh one).
# The checks after a run cost what it changed: Perl counts each package's names and sub
# changes (`mro::get_pkg_gen`), so only a package whose count moved is scanned.

# Compile callbacks before any lexical of this file exists, so scripts cannot see them.
sub QbWorker::compile_and_run { eval $_[0]; return $@ }

use strict;
use warnings;
use JSON::PP ();
use POSIX ();
# An XS JSON module, when the site has one, is ten times faster than the core JSON::PP.
my $JSON_CLASS;
BEGIN {
    $JSON_CLASS = 'JSON::PP';
    for my $class ('Cpanel::JSON::XS', 'JSON::XS') {
        (my $file = "$class.pm") =~ s{::}{/}g;
        if (eval { require $file; 1 }) { $JSON_CLASS = $class; last }
    }
}
use Symbol ();
use B ();
use mro ();

BEGIN {
    # `exit` in a callback ends the callback, not the worker.
    *CORE::GLOBAL::exit = sub (;$) {
        die bless({ code => (@_ ? $_[0] : 0) }, 'QbWorker::Exit');
    };
}

package QbWorker::Capture;
# STDOUT and STDERR of a run, written straight to the worker's output file up to the cap.
sub TIEHANDLE { my ($class, $fh) = @_; return bless { fh => $fh }, $class }
sub PRINT {
    my $self = shift;
    my $sep = defined $, ? $, : '';
    my $end = defined $\ ? $\ : '';
    QbWorker::emit($self->{fh}, join($sep, @_) . $end);
    return 1;
}
sub PRINTF { my $self = shift; my $fmt = shift; QbWorker::emit($self->{fh}, sprintf($fmt, @_)); 1 }
sub WRITE {
    my ($self, $buf, $len, $off) = @_;
    $off = 0 unless defined $off;
    $len = length($buf) - $off unless defined $len;
    QbWorker::emit($self->{fh}, substr($buf, $off, $len));
    return $len;
}
sub FILENO { return fileno($_[0]{fh}) }
sub BINMODE { return 1 } sub CLOSE { return 1 } sub EOF { return 1 }
sub READLINE { return } sub UNTIE { return }
# Without it, freeing a capture object looks for AUTOLOAD and adds that name to this package.
sub DESTROY { return }

package QbWorker;

my ($RFD, $WFD) = @ARGV[-2, -1];
@ARGV = ();
open(my $IN, '<&=', $RFD) or die "qbcallbacks perl worker: cannot open fd $RFD: $!\n";
open(my $OUT, '>&=', $WFD) or die "qbcallbacks perl worker: cannot open fd $WFD: $!\n";
binmode($IN);
binmode($OUT);
open(my $RAW_OUT, '>&=', 1) or die "cannot open stdout: $!\n";
open(my $RAW_ERR, '>&=', 2) or die "cannot open stderr: $!\n";
my $JSON = $JSON_CLASS->new->utf8->allow_nonref;
my $ROOM = 0;
my $DROPPED = 0;
my $ACTIVE = 0;
my $RUNS = 0;
# Bounds of one qb call: the host's limits (max_qb_args, max_qb_arg_size) and the longest
# line it reads from a worker, sent by `init`.
my ($MAX_ARGS, $MAX_ARG_SIZE, $MAX_MESSAGE);
my (%BASE_ENV, @BASE_INC, $BASE_UMASK, %BASE_CODE, $BASE_FREE_FD, @STD_COPIES);
my (%BASE_INC_FILES, %BASE_SYMBOLS, $BASE_XS, $BASE_ENDS, %BASE_GEN, @BASE_SUBS, @BASE_STASHES);
my ($COUNTS_MOVED, $STASH_REPLACED);    # compiled at the seal, see compile_stash_checks
my @STD_HANDLES;    # keeps the copies open (close-on-exec, as Perl opens them above fd 2)
my @GUARDED = ('qb', 'QbWorker', 'QbWorker::Capture', 'CORE::GLOBAL');
$qb::jobid = $qb::workid = $qb::subid = $qb::event = undef;    # declared for `use warnings`

sub write_all {
    my ($fh, $data) = @_;
    my $off = 0;
    while ($off < length $data) {
        my $n = syswrite($fh, $data, length($data) - $off, $off);
        return unless defined $n;
        $off += $n;
    }
}

sub emit {
    my ($fh, $text) = @_;
    utf8::encode($text) if utf8::is_utf8($text);
    my $keep = $ROOM > 0 ? substr($text, 0, $ROOM) : '';
    write_all($fh, $keep) if length $keep;
    $ROOM -= length $keep;
    $DROPPED += length($text) - length($keep);
}

sub send_message { write_all($OUT, $JSON->encode($_[0]) . "\n") }

sub call {
    my ($fn, $args) = @_;
    local $/ = "\n";
    die "qb::$fn: this callback is over; qb cannot be used any more\n" unless $ACTIVE;
    die sprintf("qb::%s: %d arguments, over the limit of %d [QCB016]\n", $fn, scalar(@$args),
                $MAX_ARGS) if @$args > $MAX_ARGS;
    for my $i (0 .. $#$args) {
        my $arg = $args->[$i];
        my $size = !defined $arg ? 0 : ref $arg eq 'ARRAY' ? scalar(@$arg)
                 : ref $arg eq 'HASH' ? scalar(keys %$arg) : ref $arg ? 0 : length($arg);
        die sprintf("qb::%s: argument %d has size %d, over the limit of %d [QCB017]\n", $fn,
                    $i + 1, $size, $MAX_ARG_SIZE) if $size > $MAX_ARG_SIZE;
    }
    my $line = eval { $JSON->encode({ op => 'call', fn => $fn, args => $args }) };
    die "qb::$fn: arguments must be plain data\n" unless defined $line;
    die sprintf("qb::%s: the call is too large to send (%d bytes; at most %d)\n", $fn,
                length($line), $MAX_MESSAGE) if length($line) >= $MAX_MESSAGE;
    write_all($OUT, "$line\n");
    my $reply = <$IN>;
    POSIX::_exit(70) unless defined $reply;    # the host went away
    $. = 0;    # the script's messages must not end with the worker pipe's line count
    my $answer = $JSON->decode($reply);
    die "$answer->{error}\n" if exists $answer->{error};
    my $value = $answer->{value};
    my $kind = ref $value;    # a JSON boolean is a blessed scalar of the JSON class
    return ($kind && $kind ne 'ARRAY' && $kind ne 'HASH') ? ($value ? 1 : 0) : $value;
}

# The lowest free descriptor: a descriptor a run leaves open takes it, so it moves up.
sub lowest_free_fd {
    my $fd = POSIX::dup(0);
    return -1 unless defined $fd;
    POSIX::close($fd);
    return $fd;
}

sub code_of {
    my %code;
    no strict 'refs';
    for my $package (@GUARDED) {
        for my $name (keys %{"${package}::"}) {
            my $glob = ${"${package}::"}{$name};
            next unless ref(\$glob) eq 'GLOB' && defined *{$glob}{CODE};
            $code{"${package}::$name"} = *{$glob}{CODE};
        }
    }
    return %code;
}

# Every package (stash) name, walking the tree from main:: ('Foo::Bar::' for Foo::Bar).
sub stashes {
    no strict 'refs';
    my @names = ('main::');
    for (my $i = 0; $i < @names; $i++) {
        my $prefix = $names[$i] eq 'main::' ? '' : $names[$i];
        for my $key (keys %{$names[$i]}) {
            push @names, "$prefix$key" if substr($key, -2) eq '::' && $key ne 'main::';
        }
    }
    return @names;
}

# The names in every package, to tell what a run added.
sub symbols_of {
    no strict 'refs';
    return map { my $s = $_; ($s => { map { $_ => 1 } keys %{$s} }) } stashes();
}

# The END blocks compiled since the worker was sealed (Perl keeps the newest first).
sub new_end_blocks {
    my $av = B::end_av();
    return () unless ref($av) && $av->isa('B::AV');
    my $blocks = $av->object_2svref;
    my $new = @$blocks - $BASE_ENDS;
    return $new > 0 ? splice(@$blocks, 0, $new) : ();
}

# Run the END blocks a run compiled, in Perl's order; the first error is the run's.
sub run_end_blocks {
    my ($error) = @_;
    for my $block (new_end_blocks()) {
        eval { $block->(); 1 } or do { $error = $@ if !ref($error) && $error eq '' };
    }
    return $error;
}

# Delete what a run added to any package: its globals, the packages it declared or loaded
# (they are new names in a package that existed), and the %INC entries of what it loaded.
sub forget_new_symbols {
    no strict 'refs';
    %INC = %BASE_INC_FILES;
    return 'the callback deleted or replaced a package' if $STASH_REPLACED->();
    # The count of a hash is kept by Perl: only a package whose count moved is looked at.
    for my $stash ($COUNTS_MOVED->() ? @BASE_STASHES : ()) {
        next if keys(%{$stash->[0]}) == $stash->[1];
        my $base = $BASE_SYMBOLS{$stash->[0]};
        exists $base->{$_} or delete ${$stash->[0]}{$_} for keys %{$stash->[0]};
    }
    return @DynaLoader::dl_shared_objects > $BASE_XS
        ? 'the callback loaded a compiled (XS) module' : undef;
}

# Two checks compiled from the sealed packages: whether any package's name count moved, and
# whether any package is no longer the one its parent held (deleted and made again, or its
# glob assigned). Names compiled in cost no lookup at run time, a tenth of a loop by name.
sub compile_stash_checks {
    no strict 'refs';
    my (@counts, @same);
    for my $stash (map { $_->[0] } @BASE_STASHES) {
        # A name that cannot be written as code: look at every package by name, every run.
        return (sub { 1 }, sub { 0 }) unless $stash =~ /\A(?:[A-Za-z_]\w*::)+\z/;
        my $full = $stash eq 'main::' ? $stash : "main::$stash";
        push @counts, "keys(%$full) != " . scalar(keys %{$stash});
        my ($parent, $leaf) = $full =~ /\A(.*::)(\w+::)\z/ or next;
        push @same, "\\\$$parent\{'$leaf'} != " . (0 + \${$parent}{$leaf});
    }
    my @subs = map { eval "sub { no warnings; return $_ }" or die $@ }
               join(' || ', @counts), join(' || ', @same) || '0';
    return @subs;
}

# What a run may change, as it was after the worker's set-up.
sub seal {
    # Copies of descriptors 0-2, put back after every run (a script may close or reopen them).
    open($STD_HANDLES[0], '<&', \*STDIN) or undef $STD_HANDLES[0];
    open($STD_HANDLES[1], '>&', $RAW_OUT) or undef $STD_HANDLES[1];
    open($STD_HANDLES[2], '>&', $RAW_ERR) or undef $STD_HANDLES[2];
    @STD_COPIES = map { defined $_ ? fileno($_) : undef } @STD_HANDLES;
    %BASE_ENV = %ENV;
    @BASE_INC = @INC;
    $BASE_UMASK = umask;
    $BASE_FREE_FD = lowest_free_fd();
    %BASE_INC_FILES = %INC;
    $BASE_XS = @DynaLoader::dl_shared_objects;
    my $ends = B::end_av();
    $BASE_ENDS = ref($ends) && $ends->isa('B::AV') ? scalar(@{$ends->object_2svref}) : 0;
    %BASE_SYMBOLS = symbols_of();
    @BASE_STASHES = map { [$_, scalar(keys %{$BASE_SYMBOLS{$_}})] } sort keys %BASE_SYMBOLS;
    ($COUNTS_MOVED, $STASH_REPLACED) = compile_stash_checks();
    seal_code();
}

# The guarded subs as they are now: what a run must leave as it found.
sub seal_code {
    %BASE_CODE = code_of();
    @BASE_SUBS = values %BASE_CODE;
    %BASE_GEN = map { ($_ => mro::get_pkg_gen($_)) } @GUARDED;
}

sub put_back_code {
    no strict 'refs';
    no warnings 'redefine';
    my %now = code_of();
    for my $name (keys %now) {
        next if exists $BASE_CODE{$name} && $now{$name} == $BASE_CODE{$name};
        if (exists $BASE_CODE{$name}) { *{$name} = $BASE_CODE{$name} }
        else { undef &{$name} }
    }
    for my $name (keys %BASE_CODE) {
        *{$name} = $BASE_CODE{$name} unless exists $now{$name};
    }
    %BASE_GEN = map { ($_ => mro::get_pkg_gen($_)) } @GUARDED;    # putting back counts too
}

# Put everything back; returns why the worker must be replaced, or undef.
sub restore {
    alarm 0;
    for my $fd (0 .. 2) {
        POSIX::dup2($STD_COPIES[$fd], $fd) if defined $STD_COPIES[$fd];
    }
    if (grep defined, values %SIG) {
        for my $sig (keys %SIG) {
            $SIG{$sig} = 'DEFAULT' if defined $SIG{$sig} && $sig ne '__WARN__' && $sig ne '__DIE__';
        }
    }
    delete @SIG{'__WARN__', '__DIE__'};
    # Assigning %ENV calls setenv for every variable: compare first, it is four times cheaper.
    %ENV = %BASE_ENV if keys(%ENV) != keys(%BASE_ENV)
        || grep { !exists $BASE_ENV{$_} || $BASE_ENV{$_} ne $ENV{$_} } keys %ENV;
    @INC = @BASE_INC;
    umask $BASE_UMASK;
    # Perl counts every change of a package's subs (defined, replaced, deleted): only a
    # guarded package whose count moved is looked at. Emptying a sub in place (`undef &f`)
    # keeps its count, and its body cannot be put back: that costs the worker.
    put_back_code() if grep { mro::get_pkg_gen($_) != $BASE_GEN{$_} } @GUARDED;
    return 'the callback undefined a sub of the worker' if grep { !defined &$_ } @BASE_SUBS;
    my $why = forget_new_symbols();
    if ($BASE_FREE_FD >= 0 && lowest_free_fd() != $BASE_FREE_FD) {
        return 'the callback left a file descriptor open';
    }
    return $why;
}

# A script's bytes, or undef and why not; a FIFO put in its place is refused, not waited on.
sub read_script {
    my ($path, $source, $n) = ($_[0], '');
    utf8::encode($path);
    sysopen(my $fh, $path, POSIX::O_RDONLY() | POSIX::O_NONBLOCK()) or return (undef, "$!");
    return (undef, 'it is not a regular file') unless -f $fh;
    while ($n = sysread($fh, $source, 65536, length $source)) { }
    return defined $n ? ($source) : (undef, "$!");
}

sub run_callback {
    my ($msg) = @_;
    $ROOM = $msg->{cap};
    $DROPPED = 0;
    my %done = (op => 'done', status => 'ok', exit_code => 0, error => undef);
    my $name = $msg->{name};
    my ($source, $unread) = $msg->{code};
    if (defined $source) { utf8::encode($source) }    # inline code is read like a file: as bytes
    else { ($source, $unread) = read_script($msg->{path}) }
    return { %done, status => 'error', exit_code => 2,
             error => "cannot read the script $name: $unread", dropped => 0 } if defined $unread;
    my $cwd = $msg->{cwd};
    utf8::encode($cwd);
    unless (chdir $cwd) {
        return { %done, status => 'error', exit_code => 2,
                 error => "cannot enter the working directory: $!", dropped => 0 };
    }
    (my $line_name = $name) =~ s/["\r\n]/_/g;
    utf8::encode($line_name);
    $RUNS++;
    my $package = "QbWorker::Run$RUNS";
    $qb::jobid = $msg->{jobid};
    $qb::workid = $msg->{workid};
    $qb::subid = $msg->{subid};
    $qb::event = $msg->{event};
    my $error;
    {
        $0 = $name if $0 ne $name;    # set only when it changes: each setting is a syscall
        local @ARGV = ();
        local ($/, $,, $\, $", $;) = ("\n", undef, undef, ' ', "\034");
        tie *STDOUT, 'QbWorker::Capture', $RAW_OUT;
        tie *STDERR, 'QbWorker::Capture', $RAW_ERR;
        $ACTIVE = 1;
        $error = QbWorker::compile_and_run("package $package;\n#line 1 \"$line_name\"\n$source\n");
        $error = run_end_blocks($error);
        $ACTIVE = 0;
        untie *STDOUT;
        untie *STDERR;
    }
    Symbol::delete_package($package);
    # `#line` made a `_<file` name in main::; dropped here, main:: needs no scan for it.
    delete $main::{"_<$line_name"} unless $BASE_SYMBOLS{'main::'}{"_<$line_name"};
    my $why = eval { restore() };
    $why = "the worker could not be reset: $@" if !defined $why && $@;
    $done{recycle} = $why if defined $why;
    if (ref $error eq 'QbWorker::Exit') {
        my $code = $error->{code};
        $code = 0 unless defined $code && $code =~ /^-?\d+$/;
        %done = (%done, status => 'error', exit_code => $code + 0,
                 error => "the callback called exit($code)") if $code != 0;
    }
    elsif (ref $error || $error ne '') {
        %done = (%done, status => 'error', exit_code => 255, error => "$error");
    }
    $done{dropped} = $DROPPED;
    return \%done;
}

while (defined(my $line = <$IN>)) {
    $. = 0;    # a message's `<handle> line N` suffix is for the script's own reads
    my $msg = $JSON->decode($line);
    if ($msg->{op} eq 'init') {
        my $failed = QbWorker::compile_and_run($msg->{qb});
        die "qbcallbacks perl worker: the qb module does not compile: $failed" if $failed;
        $INC{'qb.pm'} = '(generated by qbcallbacks)';
        $MAX_ARGS = $msg->{max_args};
        $MAX_ARG_SIZE = $msg->{max_arg_size};
        $MAX_MESSAGE = $msg->{max_message};
        seal();
    }
    elsif ($msg->{op} eq 'run') {
        my $done = run_callback($msg);
        send_message($done);
        POSIX::_exit(0) if $done->{recycle};
    }
}
CORE::exit(0);
