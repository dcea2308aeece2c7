"""/quota-admin: moderators look at and change members' credits, limits and bans, and read the audit trail.

Hidden by default from members without Manage Server, and checked again here for every subcommand (the group's
``interaction_check``): a server admin can make the command visible to anyone. A moderator acts only on the server
the command is used in; every change is audited by the quota service in the transaction of the change.
"""

from __future__ import annotations

import discord
from discord import app_commands

from bot.app import Bot
from bot.credits.report import build_report
from bot.credits.types import MAX_CREDITS, MAX_REASON_LENGTH
from bot.history import history_page
from bot.i18n import tr
from bot.jobs.requester import member_role_ids
from bot.render.history import job_entry
from bot.render.job import EMBED_COLOUR, credits_text
from bot.render.moderation import AUDIT_MAX_PAGE, AUDIT_PAGE_SIZE, audit_embed, change_text, limit_text
from bot.render.quota import ledger_text, limit_source_text, quota_embed
from cogs._moderator import ModeratorGroup
from cogs.history import show_history_page

Credits = app_commands.Range[int, 0, MAX_CREDITS]
SignedCredits = app_commands.Range[int, -MAX_CREDITS, MAX_CREDITS]
Reason = app_commands.Range[str, 1, MAX_REASON_LENGTH]
RECENT_JOBS = 5


def _name(user: discord.abc.User) -> str:
    return discord.utils.escape_markdown(user.display_name)


@app_commands.default_permissions(manage_guild=True)
@app_commands.guild_only()
@app_commands.allowed_installs(guilds=True, users=False)
class QuotaAdmin(ModeratorGroup, name="quota-admin", description="Moderators: members' credits, limits, bans"):
    async def _effective_limit(self, guild_id: int, user: discord.abc.User, locale: object) -> str:
        status = await self.bot.services.quota.status(guild_id, user.id, member_role_ids(user))
        source = limit_source_text(status.limit_source, own=False, locale=locale)
        return tr(
            locale, "Their daily limit is now {credits}: {source}.", credits=credits_text(status.limit), source=source
        )

    @app_commands.command(name="view", description="A member's credits, recent credit changes and jobs")
    @app_commands.describe(user="The member")
    async def view(self, interaction: discord.Interaction[Bot], user: discord.User) -> None:
        services = self.bot.services
        guild_id = self.guild_id(interaction)
        report = await build_report(
            services.quota,
            services.job_records,
            services.engine.steps.position,
            guild_id=guild_id,
            user_id=user.id,
            role_ids=member_role_ids(user),
            max_running=services.settings.max_running_jobs_per_user,
            jobs_in_scope_only=True,
        )
        ledger = await services.quota.ledger(guild_id, user.id, limit=10)
        recent = await history_page(services.job_records, subject_id=user.id, guild_id=guild_id, model_key=None, page=1)
        lang = interaction.locale
        details = discord.Embed(colour=EMBED_COLOUR)
        details.add_field(name=tr(lang, "Last credit changes"), value=ledger_text(ledger, locale=lang), inline=False)
        jobs = "\n".join(job_entry(job, own=False, locale=lang) for job in recent.jobs[:RECENT_JOBS])
        details.add_field(
            name=tr(lang, "Recent jobs ({count} in all)", count=recent.total),
            value=(jobs or tr(lang, "No jobs here yet."))[:1024],
            inline=False,
        )
        details.set_footer(text=tr(lang, "All their jobs: /quota-admin history. Every change: /quota-admin audit."))
        summary = quota_embed(report, own=False, subject=_name(user), locale=lang)
        await interaction.edit_original_response(content=f"<@{user.id}>", embeds=[summary, details])

    @app_commands.command(name="set-limit", description="A member's own daily limit (leave credits out to remove it)")
    @app_commands.describe(
        user="The member", credits="Credits a day; leave out to remove their own limit", reason="Why"
    )
    async def set_limit(
        self,
        interaction: discord.Interaction[Bot],
        user: discord.User,
        credits: Credits | None = None,
        reason: Reason | None = None,
    ) -> None:
        guild_id = self.guild_id(interaction)
        before, after = await self.bot.services.quota.set_member_limit(
            guild_id, user.id, credits, actor_id=interaction.user.id, reason=reason
        )
        lang = interaction.locale
        none = tr(lang, "none")
        text = change_text(
            tr(lang, "Own daily limit of {member}", member=f"<@{user.id}>"),
            limit_text(before, unset=none, locale=lang),
            limit_text(after, unset=none, locale=lang),
            lang,
        )
        effective = await self._effective_limit(guild_id, user, lang)
        await interaction.edit_original_response(content=f"{text}\n{effective}")

    @app_commands.command(name="grant", description="Give bonus credits that never reset (negative takes them away)")
    @app_commands.describe(user="The member", credits="Bonus credits to give (negative: take away)", reason="Why")
    async def grant(
        self,
        interaction: discord.Interaction[Bot],
        user: discord.User,
        credits: SignedCredits,
        reason: Reason | None = None,
    ) -> None:
        after = await self.bot.services.quota.grant(
            self.guild_id(interaction), user.id, credits, actor_id=interaction.user.id, reason=reason
        )
        what = tr(interaction.locale, "Bonus credits of {member}", member=f"<@{user.id}>")
        text = change_text(what, str(after - credits), str(after), interaction.locale)
        await interaction.edit_original_response(content=f"{text} ({'+' if credits > 0 else '−'}{abs(credits)})")

    @app_commands.command(name="reset", description="Set the credits a member used today back to 0")
    @app_commands.describe(user="The member", reason="Why")
    async def reset(
        self, interaction: discord.Interaction[Bot], user: discord.User, reason: Reason | None = None
    ) -> None:
        guild_id = self.guild_id(interaction)
        quota = self.bot.services.quota
        before = await quota.status(guild_id, user.id, member_role_ids(user))
        await quota.reset(guild_id, user.id, actor_id=interaction.user.id, reason=reason)
        lang = interaction.locale
        text = change_text(
            tr(lang, "Credits used today by {member}", member=f"<@{user.id}>"), str(before.used), "0", lang
        )
        unchanged = tr(lang, "Bonus credits are unchanged ({bonus}).", bonus=before.bonus)
        await interaction.edit_original_response(content=f"{text} {unchanged}")

    @app_commands.command(name="ban", description="Stop a member from generating in this server")
    @app_commands.describe(user="The member", reason="Why (shown to them when they try)")
    async def ban(
        self, interaction: discord.Interaction[Bot], user: discord.User, reason: Reason | None = None
    ) -> None:
        newly = await self.bot.services.quota.ban(
            self.guild_id(interaction), user.id, actor_id=interaction.user.id, reason=reason
        )
        member = f"<@{user.id}>"
        text = (
            tr(
                interaction.locale,
                "🚫 {member}: not banned → **banned** from generating in this server.",
                member=member,
            )
            if newly
            else tr(interaction.locale, "{member} was already banned; the reason is updated.", member=member)
        )
        await interaction.edit_original_response(content=text)

    @app_commands.command(name="unban", description="Let a banned member generate again")
    @app_commands.describe(user="The member", reason="Why")
    async def unban(
        self, interaction: discord.Interaction[Bot], user: discord.User, reason: Reason | None = None
    ) -> None:
        was = await self.bot.services.quota.unban(
            self.guild_id(interaction), user.id, actor_id=interaction.user.id, reason=reason
        )
        member = f"<@{user.id}>"
        text = (
            tr(interaction.locale, "✅ {member}: banned → **not banned**.", member=member)
            if was
            else tr(interaction.locale, "{member} was not banned; nothing changed.", member=member)
        )
        await interaction.edit_original_response(content=text)

    @app_commands.command(name="role-limit", description="The daily limit of members with a role (leave out to remove)")
    @app_commands.describe(role="The role", credits="Credits a day; leave out to remove the role's limit", reason="Why")
    async def role_limit(
        self,
        interaction: discord.Interaction[Bot],
        role: discord.Role,
        credits: Credits | None = None,
        reason: Reason | None = None,
    ) -> None:
        before, after = await self.bot.services.quota.set_role_limit(
            self.guild_id(interaction), role.id, credits, actor_id=interaction.user.id, reason=reason
        )
        lang = interaction.locale
        none = tr(lang, "none")
        text = change_text(
            tr(lang, "Daily limit of members with {role}", role=f"<@&{role.id}>"),
            limit_text(before, unset=none, locale=lang),
            limit_text(after, unset=none, locale=lang),
            lang,
        )
        highest = tr(lang, "A member gets the highest limit among their roles.")
        await interaction.edit_original_response(content=f"{text} {highest}")

    @app_commands.command(name="server-default", description="This server's default daily limit (leave out to remove)")
    @app_commands.describe(credits="Credits a day; leave out to use the bot's default", reason="Why")
    async def server_default(
        self, interaction: discord.Interaction[Bot], credits: Credits | None = None, reason: Reason | None = None
    ) -> None:
        services = self.bot.services
        guild_id = self.guild_id(interaction)
        before, after = await services.quota.set_server_default(
            guild_id, credits, actor_id=interaction.user.id, reason=reason
        )
        lang = interaction.locale
        bot_default = tr(
            lang, "the bot's default ({credits} a day)", credits=credits_text(services.settings.daily_credits)
        )
        text = change_text(
            tr(lang, "Default daily limit in this server"),
            limit_text(before, unset=bot_default, locale=lang),
            limit_text(after, unset=bot_default, locale=lang),
            lang,
        )
        await interaction.edit_original_response(content=text)

    @app_commands.command(name="audit", description="Who changed what, when and why (newest first)")
    @app_commands.describe(user="Only actions about this member", page="Which page (10 a page)")
    async def audit(
        self,
        interaction: discord.Interaction[Bot],
        user: discord.User | None = None,
        page: app_commands.Range[int, 1, AUDIT_MAX_PAGE] = 1,
    ) -> None:
        entries = await self.bot.services.audit.entries(
            self.guild_id(interaction),
            target_user_id=user.id if user else None,
            limit=page * AUDIT_PAGE_SIZE + 1,
        )
        shown = entries[(page - 1) * AUDIT_PAGE_SIZE : page * AUDIT_PAGE_SIZE]
        embed = audit_embed(
            shown,
            page=page,
            has_older=len(entries) > page * AUDIT_PAGE_SIZE,
            subject=_name(user) if user else None,
            locale=interaction.locale,
        )
        await interaction.edit_original_response(embed=embed)

    @app_commands.command(name="history", description="A member's jobs in this server, newest first")
    @app_commands.describe(user="The member", page="Which page (10 jobs a page)")
    async def history(
        self, interaction: discord.Interaction[Bot], user: discord.User, page: app_commands.Range[int, 1, 100_000] = 1
    ) -> None:
        await show_history_page(
            interaction, viewer_id=interaction.user.id, subject_id=user.id, model_key=None, page=page
        )


async def setup(bot: Bot) -> None:
    bot.tree.add_command(QuotaAdmin(bot))


async def teardown(bot: Bot) -> None:
    bot.tree.remove_command("quota-admin")
